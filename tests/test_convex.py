from __future__ import annotations

import cv2
import numpy as np

from vstream.evaluation.convex import _dct2, _dct_eigenvalues, _divergence, _gradient, _idct2, solve_channel, suppress_reflection
from vstream.evaluation.metrics import psnr


def test_divergence_is_the_negative_adjoint_of_the_gradient(rng):
    u, gx, gy = rng.random((3, 6, 8))
    dx, dy = _gradient(u)
    assert np.isclose(np.sum(dx * gx + dy * gy), -np.sum(u * _divergence(gx, gy)))


def test_dct_diagonalises_the_neumann_laplacian(rng):
    u = rng.random((8, 10))
    laplacian = _divergence(*_gradient(u))
    np.testing.assert_allclose(_idct2(_dct_eigenvalues(8, 10) * _dct2(u)), laplacian, atol=1e-10)


def test_solution_satisfies_the_normal_equations(rng):
    """(lam L^T L + eps) T = lam L^T div(delta_h grad Y) + eps Y, with L symmetric."""
    y = rng.random((8, 12))
    h, lam, eps = 0.3, 2.0, 1e-2
    t = solve_channel(y.copy(), h, lam, eps)

    def lap(u):
        return _divergence(*_gradient(u))

    gx, gy = _gradient(y)
    weak = np.hypot(gx, gy) <= h
    gx[weak] = gy[weak] = 0
    target = _divergence(gx, gy)
    np.testing.assert_allclose(lam * lap(lap(t)) + eps * t, lam * lap(target) + eps * y, atol=1e-8)


def test_suppresses_a_smooth_reflection_on_a_sharp_background(rng):
    background = np.kron(rng.integers(30, 220, (8, 8, 3)), np.ones((16, 16, 1))).astype(np.float64)
    reflection = cv2.GaussianBlur(rng.random((128, 128, 3)) * 255, (0, 0), 8) - 128
    blended = np.clip(background + 0.8 * reflection, 0, 255).astype(np.uint8)
    out = suppress_reflection(blended, h=0.05)
    assert out.shape == blended.shape and out.dtype == np.uint8
    assert psnr(out, background.astype(np.uint8)) > psnr(blended, background.astype(np.uint8))


def test_odd_sizes(rng):
    image = rng.integers(0, 256, (33, 45, 3), dtype=np.uint8)
    assert suppress_reflection(image).shape == (33, 45, 3)
