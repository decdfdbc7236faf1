"""Image quality metrics on ``(H, W, 3)`` uint8 RGB images."""

from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (inf when identical)."""
    return psnr_of_mse(float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def psnr_gain_aligned(a: np.ndarray, truth: np.ndarray) -> float:
    """:func:`psnr` of ``a`` against ``truth`` after each channel of ``a`` is scaled by the gain
    that fits it best (least squares).

    Two shots of a scene, through glass and without it, often differ by exposure and white
    balance, a per-channel gain: plain PSNR credits a method for guessing that gain. This one does
    not, while an additive layer (a reflection, a veil of reflected light) still counts.
    """
    x = a.reshape(-1, 3).astype(np.float64)
    y = truth.reshape(-1, 3).astype(np.float64)
    energy = np.einsum("ij,ij->j", x, x)
    gain = np.divide(np.einsum("ij,ij->j", x, y), energy, out=np.ones(3), where=energy > 0)
    return psnr_of_mse(float(np.mean((x * gain - y) ** 2)))


def psnr_of_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error in 0..255 units (inf for none)."""
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1=0.01,
    K2=0.03, computed per RGB channel and averaged."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(value.mean())
