"""Still images: cleaned in RGB, their alpha, grey and 16-bit samples kept where the output format
holds them (:data:`HOLDS`); what it cannot hold is dropped with a warning that names it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import colour

log = logging.getLogger(__name__)

# What each image format holds besides 8-bit grey and RGB, as OpenCV writes it.
HOLDS: dict[str, frozenset[str]] = {
    ".png": frozenset({"alpha", "16-bit"}),
    ".tif": frozenset({"alpha", "16-bit"}),
    ".tiff": frozenset({"alpha", "16-bit"}),
    ".webp": frozenset({"alpha"}),
    ".bmp": frozenset({"alpha"}),
    ".jpg": frozenset(),
    ".jpeg": frozenset(),
}


def clean(image: np.ndarray, clean_rgb: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``image`` (grey ``(H, W)``, RGB or RGBA; uint8 or uint16) cleaned by ``clean_rgb`` (RGB →
    RGB of the same dtype): grey stays grey, alpha passes through untouched."""
    if image.ndim == 2:
        return cv2.cvtColor(clean_rgb(cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)), cv2.COLOR_RGB2GRAY)
    if image.shape[2] == 4:
        return np.dstack([clean_rgb(np.ascontiguousarray(image[..., :3])), image[..., 3]])
    return clean_rgb(image)


def fitted(image: np.ndarray, output: Path) -> np.ndarray:
    """``image`` as ``output``'s format holds it: its alpha or 16-bit samples dropped, with a warning, where it cannot."""
    holds = HOLDS.get(output.suffix.lower(), frozenset())
    if image.ndim == 3 and image.shape[2] == 4 and "alpha" not in holds:
        log.warning("%s cannot hold an alpha channel: written without it (.png, .tif and .webp keep it)", output)
        image = np.ascontiguousarray(image[..., :3])
    if image.dtype == np.uint16 and "16-bit" not in holds:
        log.warning("%s cannot hold 16-bit samples: written in 8 bits (.png and .tif keep 16)", output)
        image = colour.to_8bit(image)
    return image


def write(path: Path, image: np.ndarray) -> bool:
    """Write a grey, RGB or RGBA ``image`` (:func:`fitted` to ``path``'s format); False if OpenCV cannot."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    return cv2.imwrite(str(path), image)


def writable(output: Path) -> bool:
    """Whether OpenCV writes an image under ``output``'s extension (``.mp4``: no)."""
    return cv2.haveImageWriter(str(output))
