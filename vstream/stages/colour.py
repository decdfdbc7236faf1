"""I420 (yuv420p) frames as NumPy arrays, and the BT.601 limited-range maths OpenCV uses for them.

Video is cleaned in its own yuv420p planes: the network's small RGB input is made from
downsampled planes, and its residual goes back as a Y/U/V correction, so no full-size colour
conversion happens in either direction and an unchanged pixel stays bit-identical.
An I420 array is ``(H * 3 // 2, W)`` uint8: the Y plane, then U and V, each ``(H/2, W/2)``;
H and W are even (:mod:`vstream.stages.avframes` carries an odd-sized picture padded to even size).
"""

from __future__ import annotations

import cv2
import numpy as np

# RGB (0..255) → limited-range Y'CbCr offsets removed; matches cv2.COLOR_RGB2YUV_I420.
RGB_TO_YUV = np.array(
    [[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], np.float32
)
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV).astype(np.float32)
_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)
# The same as one affine map for cv2.transform, which saturates to uint8 in a single pass.
_YUV_TO_RGB_AFFINE = np.hstack([YUV_TO_RGB, -(YUV_TO_RGB @ _OFFSET)[:, None]]).astype(np.float32)


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y ``(H, W)``, U and V ``(H/2, W/2)`` planes of an I420 array."""
    height = i420.shape[0] * 2 // 3
    width = i420.shape[1]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return i420[:height], chroma[0], chroma[1]


def join(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`planes` (a chroma plane need not fill whole rows of the array: H/2 may be odd)."""
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])


def to_rgb(i420: np.ndarray) -> np.ndarray:
    """Full-size ``(H, W, 3)`` uint8 RGB."""
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    """I420 of an ``(H, W, 3)`` uint8 RGB image with even H and W."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


def yuv444_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Three same-size uint8 planes → ``(h, w, 3)`` uint8 RGB (used on small levels only)."""
    return cv2.transform(cv2.merge([y, u, v]), _YUV_TO_RGB_AFFINE)


def rgb_delta_to_yuv(delta: np.ndarray) -> np.ndarray:
    """An RGB difference ``(h, w, 3)`` float32 → the same difference in Y, U, V (no offsets)."""
    return cv2.transform(delta, RGB_TO_YUV)


def hstack(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two same-size I420 frames side by side, as one I420 frame twice as wide."""
    return join(*(np.hstack(pair) for pair in zip(planes(left), planes(right))))
