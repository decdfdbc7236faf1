from __future__ import annotations

import numpy as np
import pytest

from vstream.stages import pyramid
from vstream.stages.infer import InterferenceModel
from vstream.stages.reconstruct import apply_residual, clean_image, removal

from media import synthetic_frame


@pytest.mark.parametrize(
    ("size", "max_side", "levels"),
    [((180, 320), 320, 0), ((720, 1280), 320, 2), ((1080, 1920), 320, 3), ((272, 640), 320, 1), ((101, 333), 100, 2)],
)
def test_levels_for(size, max_side, levels):
    assert pyramid.levels_for(*size, max_side) == levels
    top = pyramid.level_shapes(*size, levels)[-1]
    assert max(top) <= max_side


def test_level_shapes_match_pyrdown():
    image = np.zeros((101, 77, 3), np.uint8)
    shapes = pyramid.level_shapes(101, 77, 3)
    assert pyramid.downsample(image, 3).shape[:2] == shapes[-1]


def test_build_reconstruct_is_exact(rng):
    image = rng.random((67, 93, 3), dtype=np.float32)
    details, base = pyramid.build(image, 3)
    assert len(details) == 3 and base.shape[:2] == pyramid.level_shapes(67, 93, 3)[-1]
    np.testing.assert_allclose(pyramid.reconstruct(details, base), image, atol=1e-5)


def test_expand_equals_laplacian_reconstruction_with_a_changed_base(rng):
    """The pipeline's shortcut: rebuilding with ``base - r`` equals ``frame - expand(r)``."""
    image = rng.random((90, 160, 3), dtype=np.float32)
    details, base = pyramid.build(image, 2)
    residual = rng.normal(0, 0.1, base.shape).astype(np.float32)
    shapes = pyramid.level_shapes(90, 160, 2)
    np.testing.assert_allclose(
        pyramid.reconstruct(details, base - residual), image - pyramid.expand(residual, shapes), atol=1e-5
    )


def test_identity_network_round_trip_within_one_level(identity_model):
    """With a network that removes nothing, the full pyramid pass reproduces the frame (≤ 1/255)."""
    rgb = synthetic_frame(5, 640, 360)
    out = clean_image(InterferenceModel(identity_model), rgb, max_side=160)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).max() <= 1


def test_apply_residual_strength_zero_keeps_frame(rng):
    rgb = synthetic_frame(1, 128, 96)
    shapes = pyramid.level_shapes(96, 128, 1)
    residual = rng.normal(0, 0.2, (*shapes[-1], 3)).astype(np.float32)
    np.testing.assert_array_equal(apply_residual(rgb, residual, shapes, strength=0.0), rgb)
    assert not np.array_equal(apply_residual(rgb, residual, shapes, strength=1.0), rgb)


def test_removal_soft_thresholds_by_the_floor():
    residual = np.array([-0.3, -0.01, 0.0, 0.005, 0.2], np.float32)
    np.testing.assert_allclose(removal(residual, floor=0.0), residual * 255, rtol=1e-6)
    np.testing.assert_allclose(removal(residual, floor=0.02) / 255, [-0.28, 0, 0, 0, 0.18], atol=1e-6)
    np.testing.assert_allclose(removal(residual, strength=0.5, floor=0.02) / 255, [-0.14, 0, 0, 0, 0.09], atol=1e-6)


def test_floor_keeps_small_corrections_off_the_frame(dimming_model):
    """The dimming model removes a few percent everywhere: below a higher floor, nothing changes."""
    rgb = synthetic_frame(2, 128, 96)
    model = InterferenceModel(dimming_model)
    assert not np.array_equal(clean_image(model, rgb, max_side=64), rgb)
    np.testing.assert_array_equal(clean_image(model, rgb, max_side=64, floor=0.3), rgb)
