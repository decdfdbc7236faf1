"""Training losses (claims 13-15): truncated pixel, feature, SSIM and adversarial.

Images are ``(B, 3, H, W)`` float32 in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def truncated_pixel(pred: torch.Tensor, target: torch.Tensor, threshold: float, power: int = 1) -> torch.Tensor:
    """Mean of ``|difference| ** power`` where differences at or below ``threshold`` count as zero.

    Power 1 is the truncated L1; power 2 weights a difference by its size, as PSNR does.
    """
    diff = (pred - target).abs()
    return torch.where(diff > threshold, diff**power, torch.zeros_like(diff)).mean()


def level_change(pred: torch.Tensor, source: torch.Tensor, pool: int = 16) -> torch.Tensor:
    """Mean absolute change of the local brightness (``pool``-pixel means), none forgiven.

    For clean samples, whose output must be their input: the truncated pixel loss forgives
    changes up to its threshold, and a network that reads a pale, hazy scene as a veil of
    reflected light darkens all of it by a few levels, just above it.
    """
    return F.avg_pool2d(pred - source, pool, ceil_mode=True).abs().mean()


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Gaussian 11x11 window, sigma 1.5, per channel), in [-1, 1]."""
    g = _gaussian_kernel().to(pred)
    rows, cols = g.view(1, 1, 1, -1).expand(3, 1, 1, 11), g.view(1, 1, -1, 1).expand(3, 1, 11, 1)
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable: two 1-D passes
        return F.conv2d(F.conv2d(x, rows, padding=(0, 5), groups=3), cols, padding=(5, 0), groups=3)

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    value = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return value.mean()


class FeatureExtractor(nn.Module):
    """Frozen multi-scale conv features for the feature loss.

    With ``vgg19_weights`` (a local torchvision VGG19 state dict) it is VGG19's relu1_2..relu4_4,
    as in the patent. Without (ImageNet weights cannot be downloaded here) it is the documented
    substitute: VGG19's layout with every width divided by ``width_divisor`` (CPU training) and
    fixed random weights, seeded — random conv features still carry perceptual structure (He et
    al. 2016, "A Powerful Generative Model Using Random Weights for the Deep Image Representation").
    """

    LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512)
    TAPS = (3, 8, 17, 26)  # indices after relu1_2, relu2_2, relu3_4, relu4_4

    def __init__(self, vgg19_weights: str | None = None, width_divisor: int = 4, seed: int = 0) -> None:
        super().__init__()
        divisor = 1 if vgg19_weights else width_divisor
        layers: list[nn.Module] = []
        channels = 3
        generator = torch.Generator().manual_seed(seed)
        for item in self.LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            item = item // divisor
            conv = nn.Conv2d(channels, item, 3, padding=1)
            with torch.no_grad():
                conv.weight.normal_(0, (2.0 / (9 * channels)) ** 0.5, generator=generator)
                conv.bias.zero_()
            layers += [conv, nn.ReLU(inplace=False)]
            channels = item
        self.layers = nn.Sequential(*layers)
        self.source = f"random-weight VGG19 layout, widths / {divisor} (substitute)"
        if vgg19_weights:
            state = torch.load(Path(vgg19_weights), map_location="cpu")
            features = {k.split("features.", 1)[1]: v for k, v in state.items() if k.startswith("features.")}
            self.layers.load_state_dict({k: v for k, v in features.items() if int(k.split(".")[0]) < len(layers)})
            self.source = f"VGG19 ImageNet weights from {vgg19_weights}"
        self.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in self.TAPS:
                taps.append(h)
            if i >= self.TAPS[-1]:
                break
        return taps


def feature_loss(extractor: FeatureExtractor, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the extractor's features of ``pred`` and ``target``, averaged over taps."""
    losses = [F.l1_loss(p, t) for p, t in zip(extractor(pred), extractor(target))]
    return sum(losses) / len(losses)


class Discriminator(nn.Module):
    """A small PatchGAN: ``(B, 3, H, W)`` → ``(B, 1, H/8, W/8)`` realness scores."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, out in enumerate((width, width * 2, width * 4)):
            layers += [nn.Conv2d(channels, out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def adversarial_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss towards 1 (real) or 0 (fake)."""
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))


def exposure_tolerant(pred: torch.Tensor, target: torch.Tensor, pool: int = 2, fit_gain: bool = True) -> torch.Tensor:
    """L1 for roughly aligned real pairs whose exposure differs: both images are average-pooled by
    ``pool`` (a pixel of misalignment), and with ``fit_gain`` the target is first scaled per image
    and channel by the gain that best fits it to the prediction (least squares, held fixed,
    within [0.5, 2]).

    A gain cannot undo a reflection, which adds light where the scene is dark, so the loss still
    asks for it to go; but it leaves the scene's overall level to the synthetic and clean samples.
    Without ``fit_gain`` the target's level counts (targets already at the input's exposure:
    :func:`.real_pairs.transmitted`).
    """
    pred, target = F.avg_pool2d(pred, pool), F.avg_pool2d(target, pool)
    if not fit_gain:
        return F.l1_loss(pred, target)
    with torch.no_grad():
        gain = ((pred * target).sum((2, 3), keepdim=True) / (target * target).sum((2, 3), keepdim=True).clamp_min(1e-6))
        gain = gain.clamp(0.5, 2.0)
    return F.l1_loss(pred, gain * target)
