"""The dual-branch interference-removal network (claims 1-8).

One shared encoder of grouped, gated convolutions; two decoders (decoder 1: the clean
background, decoder 2: the interference layer); skip connections carrying a multi-scale pyramid
pooling module and a multi-scale feature selection module; a result module forming the output.
Built for the budget: it works at 1/2 to 1/8 resolution (PixelUnshuffle in, PixelShuffle out),
so a 320x184 frame costs a few ms on one CPU core.

Tensors are ``(B, C, H, W)`` float32; images in [0, 1]; H and W multiples of 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import LiteEncoder


class GatedConv(nn.Module):
    """Claim 7: ``features(x) * sigmoid(gate(x))``; claim 6: both convolutions grouped."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        padding = kernel // 2
        self.features = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups)
        self.gate = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x) * torch.sigmoid(self.gate(x))


class GatedBlock(nn.Module):
    """Residual block: grouped gated 3x3, then a 1x1 that mixes the groups; the branch is scaled
    by a per-channel ``beta`` that starts at zero, so a new block is the identity."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv = GatedConv(channels, channels, 3, groups=groups)
        self.mix = nn.Conv2d(channels, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.mix(self.conv(x))


class PyramidPooling(nn.Module):
    """Claim 4: the skip feature pooled at several scales, each projected and brought back to size.

    Returns the list of scale branches (full scale first), each ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, scales: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.scales = scales
        self.project = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in scales)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = x.shape[-2:]
        branches = []
        for scale, project in zip(self.scales, self.project):
            pooled = x if scale == 1 else F.avg_pool2d(x, scale, scale, ceil_mode=True)
            y = project(pooled)
            branches.append(y if scale == 1 else F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        return branches


class ScaleSelection(nn.Module):
    """Claim 5: selective-kernel attention that weights the scale branches per channel.

    ``weights(branches)`` is ``(B, S, C, 1, 1)`` and sums to 1 over the S scales.
    """

    def __init__(self, channels: int, scales: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True))
        self.excite = nn.Conv2d(hidden, channels * scales, 1)
        self.scales = scales

    def weights(self, branches: list[torch.Tensor]) -> torch.Tensor:
        summary = torch.stack(branches, 1).sum(1).mean((2, 3), keepdim=True)
        logits = self.excite(self.squeeze(summary))
        b, _, _, _ = logits.shape
        return torch.softmax(logits.view(b, self.scales, -1, 1, 1), dim=1)

    def forward(self, branches: list[torch.Tensor]) -> torch.Tensor:
        return (self.weights(branches) * torch.stack(branches, 1)).sum(1)


class SkipFusion(nn.Module):
    """A skip connection: pyramid pooling, then scale selection, added back to the feature."""

    def __init__(self, channels: int, scales: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.pooling = PyramidPooling(channels, scales)
        self.selection = ScaleSelection(channels, len(scales))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.selection(self.pooling(x))


class Encoder(nn.Module):
    """Shared encoder: PixelUnshuffle to 1/2, then gated grouped stages at 1/2, 1/4 and 1/8.

    Returns the features of every stage, finest first.
    """

    def __init__(self, widths: tuple[int, int, int], blocks: tuple[int, int, int], groups: int) -> None:
        super().__init__()
        self.stem = GatedConv(12, widths[0], 3)
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, (width, count) in enumerate(zip(widths, blocks)):
            if i:
                self.downs.append(GatedConv(widths[i - 1], width, 3, stride=2, groups=groups))
            self.stages.append(nn.Sequential(*(GatedBlock(width, groups) for _ in range(count))))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(F.pixel_unshuffle(x, 2))
        features = [self.stages[0](h)]
        for down, stage in zip(self.downs, self.stages[1:]):
            features.append(stage(down(features[-1])))
        return features


class Decoder(nn.Module):
    """Upsamples the deepest feature, concatenating each fused skip along channels (claim 4),
    and ends with a 3-channel full-resolution map whose last layer starts at zero.

    ``widths``: channels per level, finest (1/2 resolution) first; ``skips`` in ``forward`` come
    deepest first, one per level above the deepest."""

    def __init__(self, widths: tuple[int, ...], groups: int) -> None:
        super().__init__()
        self.ups = nn.ModuleList()
        self.fuse = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for deep, shallow in zip(widths[:0:-1], widths[-2::-1]):
            self.ups.append(nn.Sequential(nn.Conv2d(deep, shallow * 4, 1), nn.PixelShuffle(2)))
            self.fuse.append(GatedConv(shallow * 2, shallow, 1))
            self.blocks.append(GatedBlock(shallow, groups))
        self.head = nn.Conv2d(widths[0], 12, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, deepest: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        h = deepest
        for up, fuse, block, skip in zip(self.ups, self.fuse, self.blocks, skips):
            h = block(fuse(torch.cat([up(h), skip], 1)))
        return F.pixel_shuffle(self.head(h), 2)


class ResultModule(nn.Module):
    """Claim 2's result module: the output image, and the interference it removed, from the two
    decoders' maps (``correction``: decoder 1's, the background is ``input - correction``;
    ``layer``: decoder 2's).

    ``mode``: "background" (decoder 1 directly), "subtract" (``input - layer``), "blend" (a
    learned per-pixel mix of the two) or "affine" (``input * gain - correction`` with ``gain =
    exp(scale * layer)``: decoder 2 relights what a shadow, a smudge or a veil dims; ``scale``
    starts at zero, so an untrained affine module is the "background" one).
    """

    MODES = ("background", "subtract", "blend", "affine")
    LOG_GAIN = 3.0  # |log gain| limit: a gain up to 20, what a shadow blocking 95% of the light needs

    def __init__(self, mode: str = "background") -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"result mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.mix = nn.Conv2d(9, 1, 3, padding=1) if mode == "blend" else None
        self.scale = nn.Parameter(torch.zeros(1, 3, 1, 1)) if mode == "affine" else None

    def forward(self, x: torch.Tensor, correction: torch.Tensor, layer: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(output, background, interference)``: decoder 1's background, and the
        interference in [-1, 1], ``input - output`` for "affine", decoder 2's layer otherwise."""
        background = (x - correction).clamp(0, 1)
        if self.mode == "affine":
            gain = torch.exp((self.scale * layer).clamp(-self.LOG_GAIN, self.LOG_GAIN))
            output = (x * gain - correction).clamp(0, 1)
            return output, background, x - output
        interference = layer.clamp(-1, 1)  # signed: a shadow darkens
        if self.mode == "background":
            return background, background, interference
        subtracted = (x - interference).clamp(0, 1)
        if self.mode == "subtract":
            return subtracted, background, interference
        weight = torch.sigmoid(self.mix(torch.cat([x, background, subtracted], 1)))
        return weight * background + (1 - weight) * subtracted, background, interference


class DualBranchNet(nn.Module):
    """The whole network. ``forward(x)`` returns ``(output, background, interference)``, each
    ``(B, 3, H, W)``: the result module's image and decoder 1's background in [0, 1], and the
    interference layer in [-1, 1] (see :class:`ResultModule`)."""

    size_multiple = 8

    def __init__(
        self,
        widths: tuple[int, int, int] = (16, 32, 64),
        blocks: tuple[int, int, int] = (1, 1, 2),
        groups: int = 4,
        scales: tuple[int, ...] = (1, 2, 4),
        result: str = "background",
    ) -> None:
        super().__init__()
        widths, blocks, scales = tuple(widths), tuple(blocks), tuple(scales)
        self.encoder = Encoder(widths, blocks, groups)
        self.skips = nn.ModuleList(SkipFusion(w, scales) for w in (widths[1], widths[0]))
        self.background_decoder = Decoder(widths, groups)
        self.interference_decoder = Decoder(widths, groups)
        self.result = ResultModule(result)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fine, middle, deepest = self.encoder(x)
        skips = [self.skips[0](middle), self.skips[1](fine)]
        return self.result(x, self.background_decoder(deepest, skips), self.interference_decoder(deepest, skips))


class PretrainedDualBranchNet(nn.Module):
    """The dual-branch network on an ImageNet-pretrained shared encoder (:mod:`.backbone`).

    The encoder's features at 1/2, 1/4, 1/8 and 1/16 resolution are projected (1x1) to the
    decoders' ``widths``; the deepest passes a pyramid pooling and scale selection over
    ``context_scales`` (whether a pattern is a reflection is a judgement over the scene), the
    others the skip fusion of :class:`DualBranchNet`. Decoders and result module are its own.
    ``forward`` is :meth:`DualBranchNet.forward`'s. Input sides: multiples of 16.
    """

    size_multiple = LiteEncoder.SIZE_MULTIPLE

    def __init__(
        self,
        encoder: str = "efficientnet_lite0",
        widths: tuple[int, int, int, int] = (16, 24, 40, 64),
        groups: int = 4,
        scales: tuple[int, ...] = (1, 2, 4),
        context_scales: tuple[int, ...] = (1, 2, 4, 8),
        result: str = "background",
    ) -> None:
        super().__init__()
        if encoder != "efficientnet_lite0":
            raise ValueError(f"unknown encoder {encoder!r}; have 'efficientnet_lite0'")
        widths = tuple(widths)
        if len(widths) != len(LiteEncoder.CHANNELS):
            raise ValueError(f"widths needs {len(LiteEncoder.CHANNELS)} entries (1/2 to 1/16), got {len(widths)}")
        self.encoder = LiteEncoder()
        self.laterals = nn.ModuleList(nn.Conv2d(c, w, 1) for c, w in zip(LiteEncoder.CHANNELS, widths))
        self.context = SkipFusion(widths[-1], tuple(context_scales))
        self.skips = nn.ModuleList(SkipFusion(w, tuple(scales)) for w in widths[-2::-1])
        self.background_decoder = Decoder(widths, groups)
        self.interference_decoder = Decoder(widths, groups)
        self.result = ResultModule(result)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = [lateral(f) for lateral, f in zip(self.laterals, self.encoder(x))]
        deepest = self.context(features[-1])
        skips = [fusion(f) for fusion, f in zip(self.skips, features[-2::-1])]
        return self.result(x, self.background_decoder(deepest, skips), self.interference_decoder(deepest, skips))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
