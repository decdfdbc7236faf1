from __future__ import annotations

import numpy as np
import pytest

from vstream.synthesis import RECIPES, SynthesisParams, feathered_mask, synthesize


def images(rng, size=(64, 80)):
    return (rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(2))


def test_reflection_sample_is_background_plus_interference(rng):
    a, b = images(rng)
    x, background, interference = synthesize("reflection", a, b, rng, SynthesisParams(clean_fraction=0.0))
    assert x.shape == background.shape == interference.shape == (64, 80, 3)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(background, a / 255, atol=1e-6)
    np.testing.assert_allclose(x, background + interference, atol=1e-6)
    assert interference.max() > 0.01


def test_deterministic_for_a_seed():
    params = SynthesisParams(clean_fraction=0.3)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        a, b = images(np.random.default_rng(1))
        runs.append(synthesize("reflection", a, b, rng, params))
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def test_clean_samples_have_no_interference(rng):
    a, b = images(rng)
    x, background, interference = synthesize("reflection", a, b, rng, SynthesisParams(clean_fraction=1.0))
    np.testing.assert_array_equal(x, background)
    assert not interference.any()


def test_feathered_mask_is_normalised_and_soft(rng):
    mask = feathered_mask(64, 64, rng, SynthesisParams(full_fraction=0.0, feather=(0.1, 0.1)))
    assert mask.shape == (64, 64, 1) and mask.max() == pytest.approx(1.0)
    assert 0 < np.mean((mask > 0.05) & (mask < 0.95))  # a feathered border exists


def test_registry_and_exception(rng):
    assert "reflection" in RECIPES
    a, b = images(rng)
    with pytest.raises(ValueError, match="no synthesis recipe"):
        synthesize("fog", a, b, rng, SynthesisParams())
