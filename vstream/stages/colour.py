"""I420 (yuv420p) frames as NumPy arrays, and the BT.601 limited-range maths OpenCV uses for them.

Video is cleaned in its own yuv420p planes: the network's small RGB input is made from
downsampled planes, and its residual goes back as a Y/U/V correction, so no full-size colour
conversion happens in either direction and an unchanged pixel stays bit-identical.
An I420 array is ``(H * 3 // 2, W)`` uint8: the Y plane, then U and V, each ``(H/2, W/2)``;
H and W are even (:mod:`vstream.stages.avframes` carries an odd-sized picture padded to even size).
4:4:4 input kept for a 4:4:4 output is carried as ``(3, H, W)`` (Y, U, V planes, any size), and
input of more than 8 bits kept for an output of more than 8 bits as uint16 of 16-bit values;
:func:`planes`, :func:`join` and the stages take all four forms.
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
    """Views of the Y ``(H, W)``, U and V ``(H/2, W/2)`` planes of an I420 array (of a 4:4:4 one: all ``(H, W)``)."""
    if full_chroma(i420):
        return i420[0], i420[1], i420[2]
    height = i420.shape[0] * 2 // 3
    width = i420.shape[1]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return i420[:height], chroma[0], chroma[1]


def join(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`planes` (a chroma plane need not fill whole rows of the array: H/2 may be odd)."""
    if u.shape == y.shape:
        return np.stack([y, u, v])
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])


def full_chroma(pixels: np.ndarray) -> bool:
    """Whether ``pixels`` is a 4:4:4 ``(3, H, W)`` array rather than I420."""
    return pixels.ndim == 3


def size(pixels: np.ndarray) -> tuple[int, int]:
    """(height, width) of the picture in an I420 or 4:4:4 array."""
    if full_chroma(pixels):
        return pixels.shape[1:]
    return pixels.shape[0] * 2 // 3, pixels.shape[1]


def unit(pixels: np.ndarray) -> int:
    """One 8-bit step in ``pixels``' values: 1 for uint8, 257 for uint16 (65535 = 255 × 257)."""
    return 257 if pixels.dtype == np.uint16 else 1


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as uint8, rounded (the network's input is 8-bit whatever the frame's depth)."""
    if pixels.dtype == np.uint8:
        return pixels
    rows = pixels.reshape(-1, pixels.shape[-1])  # OpenCV takes 2-D arrays of up to 4 channels
    return cv2.convertScaleAbs(rows, alpha=1 / 257).reshape(pixels.shape)


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
