"""``vstream eval``: background PSNR/SSIM of several methods against ground truth, side by side.

Folders are recognised by their file names, as the public reflection sets lay them out:

- ``*-input.png`` + ``*-label1.png`` (CEILNet synthetic);
- ``*_input.png`` + ``*_background.png`` (location-aware real);
- ``*_input.jpg`` + ``*_background.jpg`` (the dorm-room real pairs);
- ``*_ambient.jpg`` + ``*_ambient_T.jpg`` (flash/ambient real);
- anything else with plain images: clean photos, scored against themselves (no interference to
  remove, so the output should stay the input: the "no side effects" check; an exact copy scores
  PSNR inf). A folder of ``*input*`` images without their ground truth is refused, not scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputOpenError
from ..stages.decode import is_image
from .convex import suppress_reflection
from .metrics import psnr, psnr_gain_aligned, ssim
from .photos import in_validation_split

Method = Callable[[np.ndarray], np.ndarray]
Distance = Callable[[np.ndarray, np.ndarray], float]  # a perceptual distance of two uint8 RGB images (LPIPS)
CLEAN_BAR_DB = 38.0  # a clean photo is left alone when the output is within this PSNR of the input
LAYOUTS = (("-input.png", "-label1.png"), ("_input.png", "_background.png"), ("_input.jpg", "_background.jpg"),
           ("_ambient.jpg", "_ambient_T.jpg"))


def find_pairs(folder: Path, limit: int | None = None, held_out: int | None = None
               ) -> tuple[str, list[tuple[Path, Path | None]]]:
    """(layout name, [(input, ground truth)]) for ``folder``; ground truth None for clean photos.

    ``held_out``: of a folder of clean photos, only the validation split that training holds out
    with ``data.val_percent`` of this value (:func:`vstream.evaluation.photos.split_photos`)."""
    if not folder.is_dir():
        raise InputOpenError(f"not a folder: {folder}")
    for input_suffix, truth_suffix in LAYOUTS:
        pairs = [(p, p.with_name(p.name[: -len(input_suffix)] + truth_suffix))
                 for p in sorted(folder.glob(f"*{input_suffix}"))]
        pairs = [(p, t) for p, t in pairs if t.is_file()]
        if pairs:
            return f"{input_suffix[:-4].strip('-_')} / {truth_suffix[:-4].strip('-_')}", pairs[:limit]
    photos = sorted(p for p in folder.iterdir() if is_image(p))
    if held_out is not None:
        photos = [p for p in photos if in_validation_split(p, held_out)]
    if not photos:
        raise InputOpenError(f"no images in {folder}")
    if any(p.stem.endswith(("-input", "_input")) for p in photos):
        raise InputOpenError(f"{folder} has input images without ground truth: not scoreable")
    return "clean photos", [(p, None) for p in photos[:limit]]


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputOpenError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_pair(source: Path, truth: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """An input photo and its ground truth (the photo itself if None), resized to the input's size."""
    image = read_rgb(source)
    background = image if truth is None else read_rgb(truth)
    if background.shape != image.shape:
        background = cv2.resize(background, image.shape[1::-1], interpolation=cv2.INTER_AREA)
    return image, background


@dataclass
class Score:
    """Means over a dataset for one method, and its worst image's PSNR: on clean photos the mean is
    inf as soon as one comes out bit-exact, so the no-side-effects check reads the worst."""

    psnr: float
    ssim: float
    ms: float
    psnr_worst: float
    below_bar: int  # images under CLEAN_BAR_DB: on clean photos, the ones the method changed
    psnr_aligned: float  # after each channel's best gain onto the ground truth (metrics.psnr_gain_aligned)
    lpips: float | None = None


@dataclass
class DatasetResult:
    name: str
    layout: str
    images: int
    scores: dict[str, Score] = field(default_factory=dict)


def network_method(model_path: Path, max_side: int, floor: float = 0.0, threads: int = 2) -> Method:
    """The shipped pipeline on a still: Laplacian pyramid, network on the top level, residual back
    (soft-thresholded by ``floor``, as ``vstream clean``'s ``residual_floor``)."""
    from ..stages.infer import InterferenceModel
    from ..stages.reconstruct import clean_image

    model = InterferenceModel(model_path, threads=threads)
    return lambda rgb: clean_image(model, rgb, max_side, floor=floor)


def builtin_methods() -> dict[str, Method]:
    return {"identity": lambda rgb: rgb, "convex": suppress_reflection}


def evaluate(folder: Path, methods: dict[str, Method], limit: int | None = None,
             on_image: Callable[[], None] | None = None, distance: Distance | None = None,
             held_out: int | None = None) -> DatasetResult:
    """Score every method on every pair of ``folder``; time counts the method alone.
    ``distance``: also a perceptual distance to the ground truth (LPIPS); ``held_out``: see
    :func:`find_pairs`."""
    layout, pairs = find_pairs(folder, limit, held_out)
    rows: dict[str, list[tuple[float, ...]]] = {name: [] for name in methods}  # psnr, ssim, ms, distance, aligned
    for source, truth_path in pairs:
        image, truth = read_pair(source, truth_path)
        for name, method in methods.items():
            start = time.perf_counter()
            output = method(image)
            elapsed = time.perf_counter() - start
            perceptual = distance(output, truth) if distance else np.nan
            rows[name].append((psnr(output, truth), ssim(output, truth), elapsed * 1000, perceptual,
                               psnr_gain_aligned(output, truth)))  # psnr inf: exact copy
        if on_image:
            on_image()
    scores = {}
    for name, values in rows.items():
        psnrs, ssims, times, distances, aligned = np.array(values).T
        scores[name] = Score(float(psnrs.mean()), float(ssims.mean()), float(times.mean()), float(psnrs.min()),
                             int((psnrs < CLEAN_BAR_DB).sum()), float(aligned.mean()),
                             float(distances.mean()) if distance else None)
    return DatasetResult(folder.name, layout, len(pairs), scores)


def images_in(folders: list[Path], limit: int | None, held_out: int | None = None) -> Iterator[int]:
    for folder in folders:
        yield len(find_pairs(folder, limit, held_out)[1])
