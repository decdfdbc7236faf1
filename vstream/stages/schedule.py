"""Which frames the network runs on (key frames), and what every other frame's residual is.

The network runs on a frame when the last key frame's small level, moved onto this frame's by
dense optical flow (OpenCV's DIS), no longer predicts it within ``threshold``; at a scene cut;
and on every frame whose index is a multiple of ``max_gap``. Every other frame takes the last key
frame's residual moved by the same flow (as Deep Feature Flow, Zhu et al. 2017, carries a heavy
network's features from key frames to the rest); the temporal smoother then blends it like any
residual, so where the picture moved it is taken as moved, and where it is still it is averaged.

Key frames at multiples of ``max_gap`` (rather than ``max_gap`` after the last key) make the
choice depend only on the frames since the last such multiple: a segment of a file, its frames
numbered as in the whole file, picks the same key frames as the whole file after
``max_gap - 1`` warm-up frames (:func:`vstream.drivers.split.warmup_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import smooth

STILL = 2.0 / 255.0  # change since the key frame below which the flow is followed only in part
FLOW_MIN_SIDE = 12  # DIS needs a picture at least this wide or high; a smaller one has no flow


def has_flow(shape: tuple[int, ...]) -> bool:
    """Whether DIS can follow a picture of ``shape`` (h, w, ...): a tinier one is a key frame every time."""
    return max(shape[:2]) >= FLOW_MIN_SIDE


@dataclass(frozen=True)
class ScheduleConfig:
    """``threshold``: mean absolute error (0..1) of the moved key small level against this
    frame's above which the network runs again (0: on every frame). ``max_gap``: the network
    runs at least on every frame whose index is a multiple of it (1: on every frame)."""

    threshold: float = 0.08
    max_gap: int = 16

    def __post_init__(self) -> None:
        number = isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool)
        if not number or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"schedule.threshold must be a number in [0, 1], got {self.threshold!r}")
        if isinstance(self.max_gap, bool) or not isinstance(self.max_gap, int) or self.max_gap < 1:
            raise ValueError(f"schedule.max_gap must be a whole number of 1 or more, got {self.max_gap!r}")

    @property
    def every_frame(self) -> bool:
        return self.max_gap == 1 or self.threshold == 0.0


class KeySchedule:
    """Stateful: feed it every frame's small level in display order (``(h, w, 3)`` uint8 RGB).

    ``scene_cut`` is the smoother's (:class:`~vstream.stages.smooth.SmoothingConfig`), so the network
    runs on every frame where the smoother restarts. ``keys`` counts the key frames.
    """

    def __init__(self, config: ScheduleConfig, scene_cut: float) -> None:
        self.config = config
        self.scene_cut = scene_cut
        self._dis = None if config.every_frame else cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._key: np.ndarray | None = None  # the last key frame's luma
        self._previous: np.ndarray | None = None  # the last frame's luma
        self._grid: np.ndarray | None = None  # (h, w, 2) float32 pixel coordinates
        self.keys = 0

    def reset(self) -> None:
        """Forget the past (after a gap in the input): the next frame is a key frame."""
        self._key = self._previous = None

    def plan(self, index: int, small: np.ndarray) -> np.ndarray | None:
        """None if the network must run on frame ``index``; else where each of its pixels lies
        in the last key frame, a ``(h, w, 2)`` float32 map for :func:`carry`."""
        luma = smooth.luma(small)
        previous, self._previous = self._previous, luma
        if not self._forced(index, luma, previous):
            where = self._where_in_key(luma)
            if cv2.mean(smooth.change(luma, carry(self._key, where)))[0] <= self.config.threshold:
                return where
        self._key = luma
        self.keys += 1
        return None

    def _forced(self, index: int, luma: np.ndarray, previous: np.ndarray | None) -> bool:
        if self._dis is None or self._key is None or index % self.config.max_gap == 0 or not has_flow(luma.shape):
            return True
        if self._key.shape != luma.shape or previous.shape != luma.shape:
            return True
        return smooth.is_cut(smooth.change(luma, previous), self.scene_cut)

    def _where_in_key(self, luma: np.ndarray) -> np.ndarray:
        h, w = luma.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            self._grid = pixel_grid((h, w))
        flow = self._dis.calc(luma, self._key, None)  # luma(p) ≈ key(p + flow(p))
        # A pixel that has not changed since the key frame keeps the key's own value: DIS's flow
        # is noise where there is no texture to follow, and would make still regions flicker.
        flow *= smooth.moved(smooth.change(luma, self._key), STILL)[..., None]
        flow += self._grid
        return flow


def pixel_grid(shape: tuple[int, int]) -> np.ndarray:
    """``(h, w, 2)`` float32 pixel coordinates (x, y): a flow plus this is a :func:`carry` map."""
    xs, ys = np.meshgrid(np.arange(shape[1], dtype=np.float32), np.arange(shape[0], dtype=np.float32))
    return np.dstack([xs, ys])


def carry(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """An image of the last key frame (its ``(h, w, 3)`` float32 residual, its luma) moved onto
    this frame by :meth:`KeySchedule.plan`'s map; dtype kept."""
    return cv2.remap(image, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
