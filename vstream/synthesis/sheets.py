"""What a recipe makes, written out: picture sheets for people, fixed eval sets for ``vstream eval``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..evaluation.photos import fit, load_rgb
from .base import Sample, params_for, synthesize


def samples(kind: str, photos: list[Path], count: int, size: int, seed: int,
            synthesis: Mapping[str, Any] | None = None) -> Iterator[Sample]:
    """``count`` samples of ``kind``, never clean, each from two of ``photos`` fitted to
    ``size`` × ``size``; deterministic for ``seed``. ``synthesis``: a training config's synthesis
    section (the kind's defaults without one)."""
    if len(photos) < 2:
        raise ValueError(f"need at least 2 photos, have {len(photos)}")
    rng = np.random.default_rng(seed)
    params = params_for(kind, {**(synthesis or {}), "clean_fraction": 0.0})
    for _ in range(count):
        a, b = (fit(load_rgb(photos[i]), size, size) for i in rng.choice(len(photos), 2, replace=False))
        yield synthesize(kind, a, b, rng, params)


def picture_sheet(kind: str, photos: list[Path], rows: int, size: int, seed: int,
                  real: list[Path] = (), synthesis: Mapping[str, Any] | None = None) -> np.ndarray:
    """``(rows × size, columns × size, 3)`` uint8 RGB: input | background | interference (shown
    around grey for the signed layer), then a real example per row when ``real`` is given."""
    lines = []
    for row, (blended, background, interference) in enumerate(samples(kind, photos, rows, size, seed, synthesis)):
        cells = [blended, background, np.clip(0.5 + interference, 0, 1)]
        if real:
            cells.append(fit(load_rgb(real[row % len(real)]), size, size).astype(np.float32) / 255)
        lines.append(np.hstack(cells))
    return (np.vstack(lines) * 255 + 0.5).astype(np.uint8)


def write_eval_set(kind: str, photos: list[Path], out: Path, count: int, size: int, seed: int,
                   synthesis: Mapping[str, Any] | None = None) -> int:
    """``count`` samples as ``NNN-input.png``, ``NNN-label1.png`` (background) and
    ``NNN-label2.png`` (the interference, +0.5 so the signed layer fits a PNG): the CEILNet layout
    that :func:`vstream.evaluation.evaluate.find_pairs` reads. Deterministic for ``seed``; returns ``count``."""
    out.mkdir(parents=True, exist_ok=True)
    for n, (blended, background, interference) in enumerate(samples(kind, photos, count, size, seed, synthesis)):
        for name, image in (("input", blended), ("label1", background), ("label2", 0.5 + interference)):
            rgb = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
            if not cv2.imwrite(str(out / f"{n:03d}-{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write into {out}")
    return count
