"""Folders of photos for synthesis: listing, the stable validation split, loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from ..stages.decode import is_image


def list_photos(folder: Path, at_least: int = 1) -> list[Path]:
    """Every image under ``folder``, sorted; ValueError when there are fewer than ``at_least``."""
    photos = sorted(p for p in Path(folder).rglob("*") if is_image(p))
    if len(photos) < at_least:
        raise ValueError(f"need at least {at_least} photos in {folder}, found {len(photos)}")
    return photos


def split_photos(folder: Path, val_percent: int) -> tuple[list[Path], list[Path]]:
    """(train, validation) photo paths; a photo is in validation when the first byte of the MD5 of
    its name, mod 100, is below ``val_percent`` — stable whatever else is in the folder."""
    photos = list_photos(folder, at_least=4)
    val = [p for p in photos if in_validation_split(p, val_percent)]
    return [p for p in photos if p not in val], val


def in_validation_split(photo: Path, val_percent: int) -> bool:
    """Whether :func:`split_photos` holds ``photo`` out for validation at ``val_percent``."""
    return hashlib.md5(photo.name.encode()).digest()[0] % 100 < val_percent


def load_rgb(path: Path, min_side: int = 0) -> np.ndarray:
    """A photo as ``(H, W, 3)`` uint8 RGB, upscaled if its short side is below ``min_side``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    short = min(image.shape[:2])
    if short < min_side:
        image = cv2.resize(image, None, fx=min_side / short, fy=min_side / short, interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` centre-cropped to the aspect of ``height`` × ``width`` and resized to it."""
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    ch, cw = min(h, round(height / scale)), min(w, round(width / scale))
    y, x = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[y : y + ch, x : x + cw], (width, height), interpolation=cv2.INTER_AREA)
