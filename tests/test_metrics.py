from __future__ import annotations

import math

import numpy as np
import pytest

from vstream.evaluation.metrics import psnr, psnr_gain_aligned, ssim


def test_psnr_known_values(rng):
    a = rng.integers(0, 250, (16, 16, 3), dtype=np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 5) == pytest.approx(10 * math.log10(255**2 / 25))


def test_gain_aligned_psnr_ignores_a_per_channel_gain_but_not_an_offset(rng):
    truth = rng.integers(20, 200, (32, 32, 3), dtype=np.uint8)
    assert psnr_gain_aligned(truth, truth) == float("inf")
    exposed = np.round(truth * np.array([1.2, 1.1, 0.9])).astype(np.uint8)  # brighter, warmer shot
    assert psnr(exposed, truth) < 25 and psnr_gain_aligned(exposed, truth) > 45  # only rounding is left
    veiled = truth + np.uint8(30)  # an additive layer (20.0 dB): a gain takes away only part of it
    assert psnr_gain_aligned(veiled, truth) < 30
    assert psnr_gain_aligned(np.zeros_like(truth), truth) == pytest.approx(psnr(np.zeros_like(truth), truth))


def test_ssim_identical_and_reference(rng):
    a = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # a constant offset leaves structure and contrast alone: only the luminance term drops
    b = np.clip(a.astype(int) + 40, 0, 255).astype(np.uint8)
    assert 0.5 < ssim(a, b) < 1.0
    noisy = np.clip(a + rng.normal(0, 60, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < ssim(a, b)


def test_ssim_matches_a_direct_computation_on_flat_patches():
    """On constant images the SSIM map is constant: check the closed form."""
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-6)


def test_ssim_matches_a_direct_windowed_computation(rng):
    """Per pixel, per channel: Gaussian-weighted statistics over a symmetric-padded 11x11 window."""
    a = rng.integers(0, 256, (13, 15, 3), dtype=np.uint8)
    b = np.clip(a * 0.7 + rng.normal(0, 20, a.shape) + 30, 0, 255).astype(np.uint8)
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(3):
        x, y = (np.pad(im[..., c].astype(np.float64), 5, mode="symmetric") for im in (a, b))
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
                mx, my = np.sum(window * px), np.sum(window * py)
                vx, vy = np.sum(window * (px - mx) ** 2), np.sum(window * (py - my) ** 2)
                cov = np.sum(window * (px - mx) * (py - my))
                values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim(a, b) == pytest.approx(np.mean(values), rel=1e-6)
