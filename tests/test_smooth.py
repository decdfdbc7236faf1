from __future__ import annotations

import numpy as np
import pytest

from vstream.stages.smooth import ResidualSmoother, SmoothingConfig


def still(value: int = 100) -> np.ndarray:
    return np.full((36, 64, 3), value, np.uint8)


def test_constant_residual_is_unchanged(rng):
    smoother = ResidualSmoother(SmoothingConfig(alpha=0.3))
    residual = rng.normal(0, 0.1, (36, 64, 3)).astype(np.float32)
    for _ in range(5):
        out = smoother.smooth(still(), residual)
    np.testing.assert_allclose(out, residual, atol=1e-6)


def test_flicker_is_reduced_on_a_still_scene(rng):
    smoother = ResidualSmoother(SmoothingConfig(alpha=0.3))
    outs, ins = [], []
    for _ in range(40):
        residual = (0.1 + rng.normal(0, 0.05, (36, 64, 3))).astype(np.float32)
        ins.append(residual)
        outs.append(smoother.smooth(still(), residual))
    assert np.std(np.stack(outs[10:]), axis=0).mean() < 0.5 * np.std(np.stack(ins[10:]), axis=0).mean()


def test_scene_cut_resets_to_the_current_residual(rng):
    smoother = ResidualSmoother(SmoothingConfig(alpha=0.2, scene_cut=0.2))
    for _ in range(5):
        smoother.smooth(still(20), np.full((36, 64, 3), 0.3, np.float32))
    fresh = rng.normal(0, 0.1, (36, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(smoother.smooth(still(220), fresh), fresh)
    assert smoother.cuts == 1


def test_moving_pixels_take_the_current_residual():
    smoother = ResidualSmoother(SmoothingConfig(alpha=0.2, motion=0.05, scene_cut=0.9))
    first = still(100)
    smoother.smooth(first, np.zeros((36, 64, 3), np.float32))
    moved = first.copy()
    moved[:10, :10] = 200  # a small moving object, not a cut
    out = smoother.smooth(moved, np.ones((36, 64, 3), np.float32))
    np.testing.assert_allclose(out[:10, :10], 1.0)
    np.testing.assert_allclose(out[20:, 20:], 0.2, atol=1e-6)


@pytest.mark.parametrize("field", ["alpha", "motion", "scene_cut"])
def test_exception_on_out_of_range(field):
    with pytest.raises(ValueError, match=field):
        SmoothingConfig(**{field: 0.0})
