"""Score the video pipeline on a stationary-layer set (:mod:`vstream.evaluation.stationary_set`).

Each method cleans each clip's input with :func:`vstream.drivers.pipeline.clean_video`, in
process and losslessly (H.264 qp 0, 4:4:4); the output and the clean frames are decoded the
same way and compared in RGB, frame by frame: PSNR and gain-aligned PSNR
(:func:`~vstream.evaluation.metrics.psnr_gain_aligned`), their means over the clip, and the
clip's worst frame. ``identity`` scores the input itself.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CleanConfig, load_config
from ..drivers.pipeline import clean_video
from ..errors import DecodeError
from .metrics import psnr, psnr_gain_aligned
from .stationary_set import read_manifest, rgb_frames

METHODS = ("identity", "network", "network+stationary")
LOSSLESS = {"workers": 0, "encode.codec": "libx264", "encode.crf": 0, "encode.pix_fmt": "yuv444p"}


@dataclass(frozen=True)
class ClipScore:
    """One method on one clip: means over its frames, and its worst frame's PSNR."""

    clip: str
    frames: int
    method: str
    psnr: float
    psnr_aligned: float
    psnr_worst: float
    seconds: float


def method_configs(names: list[str], overrides: dict[str, Any] | None = None) -> dict[str, CleanConfig | None]:
    """The config each of ``names`` (of :data:`METHODS`) cleans with, None for ``identity``;
    ``overrides``: dotted config keys for every method that runs the pipeline."""
    configs: dict[str, CleanConfig | None] = {}
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        settings = {**(overrides or {}), **LOSSLESS, "stationary.enabled": name == "network+stationary"}
        configs[name] = None if name == "identity" else load_config("default", settings)
    return configs


def set_frames(folder: Path) -> int:
    """Frames in the set at ``folder`` (all clips)."""
    return sum(clip["frames"] for clip in read_manifest(folder))


def evaluate_set(folder: Path, methods: dict[str, CleanConfig | None],
                 on_frames: Callable[[int], None] | None = None) -> list[ClipScore]:
    """Every method on every clip of the set at ``folder``; ``on_frames(n)`` as frames are cleaned or scored."""
    scores = []
    for clip in read_manifest(folder):
        for name, config in methods.items():
            start = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="vstream-eval-") as temp:
                if config is None:
                    output = Path(clip["input"])
                else:
                    output = clean_video(clip["input"], Path(temp) / "out.mkv", config, on_frame=on_frames).output
                seconds = time.perf_counter() - start
                frames = _frame_scores(output, Path(clip["clean"]), None if config else on_frames)
            if len(frames) != clip["frames"]:
                raise DecodeError(f"{name} on {clip['name']}: {len(frames)} frames, "
                                  f"the clean file has {clip['frames']}")
            values = np.array(frames)
            scores.append(ClipScore(clip["name"], len(frames), name, float(values[:, 0].mean()),
                                    float(values[:, 1].mean()), float(values[:, 0].min()), seconds))
    return scores


def mean_scores(scores: list[ClipScore]) -> list[ClipScore]:
    """Per method, a ``MEAN`` row: the means over clips (each clip counts once), the worst frame
    of all and the total time."""
    rows = []
    for method in dict.fromkeys(s.method for s in scores):
        of = [s for s in scores if s.method == method]
        rows.append(ClipScore("MEAN", sum(s.frames for s in of), method, float(np.mean([s.psnr for s in of])),
                              float(np.mean([s.psnr_aligned for s in of])), min(s.psnr_worst for s in of),
                              sum(s.seconds for s in of)))
    return rows


def _frame_scores(output: Path, clean: Path, on_frames: Callable[[int], None] | None) -> list[tuple[float, float]]:
    """(PSNR, gPSNR) of each frame of ``output`` against the same frame of ``clean``."""
    values = []
    for cleaned, truth in zip(rgb_frames(output), rgb_frames(clean)):
        values.append((psnr(cleaned, truth), psnr_gain_aligned(cleaned, truth)))
        if on_frames:
            on_frames(1)
    return values
