from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from vstream.train.network import (  # noqa: E402
    DualBranchNet, Encoder, GatedBlock, GatedConv, PyramidPooling, ResultModule, ScaleSelection, parameter_count,
)


def test_gated_conv_is_features_times_sigmoid_gate():
    conv = GatedConv(8, 4, 3, groups=2)
    x = torch.randn(2, 8, 16, 16)
    expected = conv.features(x) * torch.sigmoid(conv.gate(x))
    torch.testing.assert_close(conv(x), expected)
    with torch.no_grad():
        gate = torch.sigmoid(conv.gate(x))
    assert float(gate.min()) > 0 and float(gate.max()) < 1


def test_encoder_convolutions_are_grouped():
    encoder = Encoder((8, 16, 32), (1, 1, 1), groups=4)
    grouped = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 4]
    dense_3x3 = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1]
    assert len(grouped) >= 6 and len(dense_3x3) == 2  # only the stem's pair sees all 12 unshuffled channels


def test_encoder_scales():
    features = Encoder((8, 16, 32), (1, 1, 1), groups=4)(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(8, 32, 48), (16, 16, 24), (32, 8, 12)]


def test_new_block_is_identity():
    block = GatedBlock(8, groups=4)
    x = torch.randn(1, 8, 10, 10)
    torch.testing.assert_close(block(x), x)


def test_pyramid_pooling_fuses_three_scales():
    pooling = PyramidPooling(8, (1, 2, 4))
    branches = pooling(torch.randn(2, 8, 12, 20))
    assert len(branches) == 3 and all(b.shape == (2, 8, 12, 20) for b in branches)
    assert not torch.allclose(branches[0], branches[2])


def test_scale_selection_weights_sum_to_one_and_depend_on_input():
    selection = ScaleSelection(8, 3)
    branches_a = [torch.randn(2, 8, 6, 6) for _ in range(3)]
    branches_b = [torch.randn(2, 8, 6, 6) * 3 for _ in range(3)]
    weights = selection.weights(branches_a)
    assert weights.shape == (2, 3, 8, 1, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 8, 1, 1))
    assert not torch.allclose(weights, selection.weights(branches_b))
    assert selection(branches_a).shape == (2, 8, 6, 6)


@pytest.mark.parametrize("mode", ResultModule.MODES)
def test_result_module_modes(mode):
    net = DualBranchNet(widths=(8, 16, 32), blocks=(1, 1, 1), result=mode)
    output, background, interference = net(torch.rand(1, 3, 32, 48))
    assert output.shape == background.shape == interference.shape == (1, 3, 32, 48)


def test_affine_result_relights_then_subtracts():
    """Untrained (scale 0) it is the background mode; then ``input * exp(scale * layer) - correction``,
    so a shadow that halves the light is undone by a flat layer."""
    module = ResultModule("affine")
    background = torch.rand(1, 3, 8, 8)
    x, correction, layer = background * 0.5, torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), math.log(2))
    output, _, interference = module(x, correction + 0.1, layer)
    torch.testing.assert_close(output, (x - 0.1).clamp(0, 1))
    with torch.no_grad():
        module.scale.fill_(1.0)
        output, _, interference = module(x, correction, layer)
        torch.testing.assert_close(output, background)
        torch.testing.assert_close(interference, x - output)  # the signed difference, as the contract says
        output, _, _ = module(x, correction, layer * 100)
    assert float(output.max()) == 1.0 and torch.isfinite(output).all()  # gain limited, output clamped


def test_untrained_network_returns_its_input_and_two_distinct_decoders():
    net = DualBranchNet()
    x = torch.rand(2, 3, 64, 96)
    output, background, interference = net(x)
    torch.testing.assert_close(output, x)  # zero-initialised heads: nothing removed yet
    assert net.background_decoder is not net.interference_decoder
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    output, background, interference = net(x)
    assert not torch.allclose(background, x - interference)


def test_interference_layer_is_signed():
    """A shadow darkens: decoder 2 must be able to say so (a [0, 1] clamp would cut its gradient)."""
    net = DualBranchNet(widths=(8, 16, 32), blocks=(1, 1, 1))
    net.interference_decoder.forward = lambda deepest, skips: torch.full((1, 3, 32, 48), -0.5)
    _, _, interference = net(torch.rand(1, 3, 32, 48))
    assert float(interference.min()) == -0.5


def test_budget():
    assert parameter_count(DualBranchNet()) <= 2_000_000


def test_exception_bad_result_mode():
    with pytest.raises(ValueError, match="result mode"):
        ResultModule("average")
