from __future__ import annotations

import math

import numpy as np
import pytest

from vstream.metrics import psnr, ssim


def test_psnr_known_values(rng):
    a = rng.integers(0, 250, (16, 16, 3), dtype=np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 5) == pytest.approx(10 * math.log10(255**2 / 25))


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
