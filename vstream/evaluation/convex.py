"""The convex-optimisation baseline the patent cites: Yang, Li, Feng, Wang, "Fast Single Image
Reflection Suppression via Convex Optimization", CVPR 2019.

Per channel, with Y the input and δ_h zeroing gradients whose magnitude is at most ``h``:

    min_T  (λ/2)‖L(T) − div(δ_h(∇Y))‖² + (ε/2)‖T − Y‖²

L is the Laplacian with Neumann boundaries, which the type-II DCT diagonalises (eigenvalues
κ(m, n) = 2cos(πm/M) + 2cos(πn/N) − 4), so the minimiser is closed-form:

    T̂ = (λκ · DCT(div δ_h ∇Y) + ε · DCT(Y)) / (λκ² + ε)

as in the authors' reference code (github.com/yyhz76/reflectSuppress, ``PoissonDCT_variant`` with
μ = 1 and its own Laplacian weight 0; only ε/λ matters). Defaults are that code's sample run:
h = 0.033 (intensities in [0, 1]), ε = 1e-8, λ = 1. Larger h removes more (and more background).
The authors' code returns T as solved, without contrast stretching; here it is clipped to [0, 255].
"""

from __future__ import annotations

import cv2
import numpy as np


def _gradient(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences, zero at the far border (Neumann)."""
    gx, gy = np.zeros_like(u), np.zeros_like(u)
    gx[:, :-1] = u[:, 1:] - u[:, :-1]
    gy[:-1, :] = u[1:, :] - u[:-1, :]
    return gx, gy


def _divergence(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Backward differences: the negative adjoint of :func:`_gradient`."""
    div = np.zeros_like(gx)
    div[:, 0] = gx[:, 0]
    div[:, 1:-1] = gx[:, 1:-1] - gx[:, :-2]
    div[:, -1] = -gx[:, -2]
    div[0, :] += gy[0, :]
    div[1:-1, :] += gy[1:-1, :] - gy[:-2, :]
    div[-1, :] += -gy[-2, :]
    return div


def _dct_eigenvalues(height: int, width: int) -> np.ndarray:
    m = np.cos(np.pi * np.arange(height) / height)[:, None]
    n = np.cos(np.pi * np.arange(width) / width)[None, :]
    return 2.0 * (m + n - 2.0)


def _dct2(u: np.ndarray) -> np.ndarray:
    return cv2.dct(u)


def _idct2(u: np.ndarray) -> np.ndarray:
    return cv2.idct(u)


def solve_channel(y: np.ndarray, h: float, lam: float, eps: float) -> np.ndarray:
    """One channel, float64 in [0, 1], even height and width (cv2.dct's requirement)."""
    gx, gy = _gradient(y)
    weak = np.hypot(gx, gy) <= h
    gx[weak] = 0.0
    gy[weak] = 0.0
    target = _divergence(gx, gy)
    kappa = _dct_eigenvalues(*y.shape)
    return _idct2((lam * kappa * _dct2(target) + eps * _dct2(y)) / (lam * kappa**2 + eps))


def suppress_reflection(rgb: np.ndarray, h: float = 0.033, lam: float = 1.0, eps: float = 1e-8) -> np.ndarray:
    """The baseline on an ``(H, W, 3)`` uint8 RGB image; returns the same shape and dtype."""
    height, width = rgb.shape[:2]
    y = rgb.astype(np.float64) / 255.0
    y = np.pad(y, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")  # cv2.dct needs even sizes
    channels = [solve_channel(np.ascontiguousarray(y[..., c]), h, lam, eps) for c in range(3)]
    t = np.stack(channels, axis=-1)[:height, :width]
    return np.clip(t * 255.0 + 0.5, 0, 255).astype(np.uint8)
