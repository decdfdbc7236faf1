from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vstream.train.losses import (  # noqa: E402
    Discriminator, FeatureExtractor, adversarial_loss, feature_loss, level_change, ssim, truncated_pixel,
)


@pytest.mark.parametrize("power", [1, 2])
def test_truncated_pixel_ignores_small_differences(power):
    a = torch.zeros(1, 3, 8, 8)
    assert float(truncated_pixel(a + 0.005, a, 0.01, power)) == 0.0
    assert float(truncated_pixel(a + 0.01, a, 0.01, power)) == 0.0  # "at or below" the threshold
    assert float(truncated_pixel(a + 0.1, a, 0.01, power)) == pytest.approx(0.1**power)


def test_truncated_pixel_squared_weights_a_difference_by_its_size():
    """Power 2: one pixel off by 0.2 costs more than four off by 0.05 (L1 prices them the same)."""
    a = torch.zeros(1, 1, 2, 2)
    one_large, four_small = a.clone(), a + 0.05
    one_large[0, 0, 0, 0] = 0.2
    assert float(truncated_pixel(one_large, a, 0.01, 1)) == pytest.approx(float(truncated_pixel(four_small, a, 0.01, 1)))
    assert float(truncated_pixel(one_large, a, 0.01, 2)) > 3 * float(truncated_pixel(four_small, a, 0.01, 2))


def test_level_change_counts_a_shift_the_pixel_loss_forgives_and_ignores_texture():
    """A clean image darkened by 0.008 everywhere: free under the truncated loss, not here; noise
    that averages out over 16 pixels costs (almost) nothing."""
    a = torch.full((2, 3, 32, 32), 0.5)
    assert float(truncated_pixel(a - 0.008, a, 0.01)) == 0.0
    assert float(level_change(a - 0.008, a)) == pytest.approx(0.008)
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None]) % 2 * 0.2 - 0.1  # ±0.1, mean 0
    assert float(level_change(a + checker, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(level_change(a[..., :20, :20] + 0.01, a[..., :20, :20])) == pytest.approx(0.01)  # partial windows


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    a = torch.rand(2, 3, 32, 32)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(a, (a + 0.2 * torch.randn_like(a)).clamp(0, 1))) < 0.9


def test_feature_loss_substitute_is_frozen_and_sensitive():
    extractor = FeatureExtractor(None, width_divisor=8)
    assert "substitute" in extractor.source
    assert not any(p.requires_grad for p in extractor.parameters())
    a = torch.rand(1, 3, 32, 32)
    assert float(feature_loss(extractor, a, a)) == 0.0
    assert float(feature_loss(extractor, a, a.flip(-1))) > 0.0


def test_discriminator_and_adversarial_loss():
    critic = Discriminator(width=8)
    scores = critic(torch.rand(2, 3, 32, 32))
    assert scores.shape == (2, 1, 4, 4)
    assert float(adversarial_loss(torch.ones(1, 1, 2, 2), real=True)) == 0.0
    assert float(adversarial_loss(torch.ones(1, 1, 2, 2), real=False)) == 1.0
