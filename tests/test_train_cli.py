from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vstream.cli import main

torch = pytest.importorskip("torch")

from vstream.synthesis import params_for  # noqa: E402
from vstream.train import trainer  # noqa: E402
from vstream.train.data import BlendSampler  # noqa: E402
from vstream.train.mining import below_psnr, clean_changes, clean_weights  # noqa: E402
from vstream.train.trainer import initial_weights, load_initial_weights  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (96, 72), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"p{i:02d}.jpg"), base)
    return folder


def tiny_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((Path(__file__).parent.parent / "configs" / "train" / "reflection.yaml").read_text())
    config["model"] = {"widths": [8, 16, 16], "blocks": [1, 1, 1], "groups": 4, "scales": [1, 2], "result": "background"}
    config["data"].update(crop=32, scene=48, val_percent=30, val_samples=4)
    config["optim"].update(steps=6, batch=2, eval_every=3)
    config["loss"].update(adversarial_after=2, feature_width_divisor=16)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_resume_export_and_clean(tmp_path, photos):
    runner = CliRunner()
    config, out = tiny_config(tmp_path), tmp_path / "run"
    result = runner.invoke(main, ["train", "--config", str(config), "--data", str(photos), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    first = torch.load(out / "last.pt", weights_only=False)["state"]
    assert first["step"] == 6 and [h["step"] for h in first["history"]] == [3, 6, 6]
    config_more = yaml.safe_load(config.read_text())
    config_more["optim"]["steps"] = 9
    config.write_text(yaml.safe_dump(config_more))
    result = runner.invoke(main, ["train", "--config", str(config), "--data", str(photos), "--out", str(out), "--resume", "-q"])
    assert result.exit_code == 0, result.output
    assert torch.load(out / "last.pt", weights_only=False)["state"]["step"] == 9
    onnx_path = tmp_path / "m.onnx"
    result = runner.invoke(main, ["export", str(out / "best.pt"), "-o", str(onnx_path)])
    assert result.exit_code == 0, result.output
    assert "max |torch - onnxruntime|" in result.stderr
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), cv2.imread(str(photos / "p00.jpg")))
    result = runner.invoke(main, ["clean", str(image), "--model", str(onnx_path), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "in.clean.png").is_file()


def test_init_fine_tunes_from_a_checkpoint(tmp_path, photos):
    runner = CliRunner()
    config = tiny_config(tmp_path)

    def train(out: str, *extra: str):
        return runner.invoke(main, ["train", "--config", str(config), "--data", str(photos), "--out", str(tmp_path / out),
                                    *extra])

    base = tmp_path / "base"
    assert train("base", "-q").exit_code == 0
    result = train("tuned", "--init", str(base / "last.pt"), "-q")
    assert result.exit_code == 0, result.output
    assert torch.load(tmp_path / "tuned" / "last.pt", weights_only=False)["state"]["init"] == str(base / "last.pt")
    shipped = tmp_path / "base.onnx"
    assert runner.invoke(main, ["export", str(base / "last.pt"), "-o", str(shipped), "-q"]).exit_code == 0

    from_onnx, from_checkpoint = initial_weights(shipped), initial_weights(base / "last.pt")
    assert from_onnx.keys() == from_checkpoint.keys()
    assert all(torch.equal(from_onnx[k], from_checkpoint[k]) for k in from_checkpoint)
    result = train("t2", "--init", str(shipped), "-q")
    assert result.exit_code == 0, result.output
    affine = yaml.safe_load(config.read_text())
    affine["model"]["result"] = "affine"  # another result mode: its own weights start fresh
    config.write_text(yaml.safe_dump(affine))
    result = train("t3", "--init", str(shipped), "-q")
    assert result.exit_code == 0, result.output
    wider = yaml.safe_load(config.read_text())
    wider["model"]["widths"] = [8, 16, 32]
    config.write_text(yaml.safe_dump(wider))
    result = train("x", "--init", str(base / "last.pt"))
    assert result.exit_code == 1 and "bad training setup" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    result = train("y", "--init", str(garbage))
    assert result.exit_code == 1 and "is not an ONNX model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_initial_weights_must_fit_all_but_the_result_module_and_new_blocks(tmp_path):
    from vstream.train.network import DualBranchNet

    path = tmp_path / "affine.pt"
    source = DualBranchNet((8, 16, 16), (1, 1, 1), result="affine")
    for name, weight in source.named_parameters():
        if name.endswith("beta"):  # trained blocks, so that a block missed in loading shows
            weight.data.fill_(0.5)
    torch.save({"model": source.state_dict()}, path)
    load_initial_weights(DualBranchNet((8, 16, 16), (1, 1, 1), result="background"), path)  # its gain scale dropped
    load_initial_weights(DualBranchNet((8, 16, 16), (1, 1, 1), result="blend"), path)  # its mix starts fresh
    grown = DualBranchNet((8, 16, 16), (1, 2, 3), result="affine")
    load_initial_weights(grown, path)  # deeper: the new blocks start as the identity
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(grown(x)[0], source(x)[0])
    deeper = tmp_path / "deeper.pt"
    torch.save({"model": grown.state_dict()}, deeper)
    for model, checkpoint in ((DualBranchNet((8, 16, 16), (1, 1, 1)), deeper),  # blocks the model lacks
                              (DualBranchNet((8, 16, 32), (1, 1, 1)), path)):  # another width
        with pytest.raises(ValueError, match="does not fit the configured network"):
            load_initial_weights(model, checkpoint)


def test_a_zero_weight_skips_its_loss(tmp_path, photos, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a loss of weight 0 was computed")

    monkeypatch.setattr(trainer, "feature_loss", never)
    monkeypatch.setattr(trainer, "adversarial_loss", never)
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["loss"].update(feature=0.0, adversarial=0.0)
    path = tmp_path / "no_feature.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer.train(path, photos, tmp_path / "run", quiet=True)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["state"]["step"] == 6


def test_clean_level_loss_sees_the_clean_samples_only(tmp_path, photos, monkeypatch):
    """``loss.clean_level``: the level loss is given the batch's clean samples (output = input
    label), at the configured pool, and nothing else."""
    calls = []

    def recording(pred, source, pool):
        calls.append((len(pred), pool))
        return (pred - source).mean()

    monkeypatch.setattr(trainer, "level_change", recording)
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["loss"].update(clean_level=1.0, clean_level_pool=8)
    config["synthesis"]["clean_fraction"] = 0.5
    config["optim"].update(batch=4, steps=12)
    path = tmp_path / "level.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer.train(path, photos, tmp_path / "run", quiet=True)
    assert calls and {pool for _, pool in calls} == {8} and all(0 < n <= 4 for n, _ in calls)
    assert any(n < 4 for n, _ in calls)  # not every sample: the clean ones


@pytest.mark.parametrize("configured, expected", [(None, 1), (2, 2)])
def test_the_pixel_loss_takes_the_configured_power(tmp_path, photos, monkeypatch, configured, expected):
    powers = []

    def recording(pred, target, threshold, power):
        powers.append(power)
        return (pred - target).abs().mean()

    monkeypatch.setattr(trainer, "truncated_pixel", recording)
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["loss"].pop("pixel_power", None)
    if configured is not None:
        config["loss"]["pixel_power"] = configured
    path = tmp_path / "power.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer.train(path, photos, tmp_path / "run", quiet=True)
    assert powers and set(powers) == {expected}


def test_scene_sampler_blends_whole_scenes_then_crops(photos):
    paths = sorted(photos.glob("*.jpg"))
    params = params_for("water", {"clean_fraction": 0.0})
    inputs, backgrounds, interference = BlendSampler(paths, "water", params, crop=32, seed=3, scene=64).batch(4)
    assert inputs.shape == backgrounds.shape == interference.shape == (4, 3, 32, 32)
    assert torch.allclose(inputs, backgrounds + interference, atol=1e-6)
    again, _, _ = BlendSampler(paths, "water", params, crop=32, seed=3, scene=64).batch(4)
    assert torch.equal(inputs, again)
    assert interference.abs().sum() > 0  # a crop of a scene may miss every drop, not all four
    with pytest.raises(ValueError, match="at least data.crop"):
        BlendSampler(paths, "water", params, crop=32, seed=3, scene=16)


def test_exception_bad_training_inputs(tmp_path, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["train", "--config", str(tiny_config(tmp_path)), "--data", str(empty), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "need at least 4 photos" in result.stderr
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["data"]["real_target"] = "transmited"  # a typo must not train on the as-shot targets
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "typo.yaml"), "--data", str(photos), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "data.real_target must be as_shot or transmitted" in result.stderr
    assert not (tmp_path / "o" / "last.pt").exists()
    result = CliRunner().invoke(main, ["export", str(tiny_config(tmp_path)), "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "not a vstream checkpoint" in result.stderr


# Hard clean negatives (vstream.train.mining)

class Halves(torch.nn.Module):
    """Outputs half its input: a model that darkens every clean scene."""

    def forward(self, x):
        return (x / 2,)


def test_clean_changes_measure_the_output_against_the_scene_beyond_the_tolerance():
    scenes = [np.full((8, 16, 3), v, np.uint8) for v in (0, 51, 255)]
    changes = clean_changes(Halves(), scenes, tolerance=0.05)
    expected = [max(v / 255 / 2 - 0.05, 0.0) ** 2 for v in (0, 51, 255)]
    np.testing.assert_allclose(changes, expected, rtol=1e-5)


def test_clean_weights_follow_the_change_and_fall_back_to_uniform():
    np.testing.assert_allclose(clean_weights(np.array([0.0, 1.0, 3.0])), [0.0, 0.25, 0.75])
    np.testing.assert_allclose(clean_weights(np.zeros(4)), [0.25] * 4)
    assert below_psnr(np.array([1e-3, 2e-4, 1e-4])) == 2  # 38 dB is an MSE of 1.58e-4


def test_hard_clean_samples_are_clean_views_of_the_weighted_photo(photos):
    paths = sorted(photos.glob("*.jpg"))
    params = params_for("shadow", {"clean_fraction": 0.0})
    plain = BlendSampler(paths, "shadow", params, crop=32, seed=5, scene=48).batch(3)
    sampler = BlendSampler(paths, "shadow", params, crop=32, seed=5, scene=48, hard_clean=0.9)
    for got, want in zip(sampler.batch(3), plain):  # no weights mined yet: the plain sampler exactly
        assert torch.equal(got, want)
    scenes = list(sampler.whole_scenes())
    assert all(s.shape[:2] == (48, 64) for s in scenes)  # 72 x 96 photos, short side at the scene size
    assert all(s.shape[:2] == (32, 64) for s in sampler.whole_scenes(multiple=32))  # sides cut to the multiple
    sampler.clean_weights = np.eye(len(paths))[4]
    inputs, backgrounds, interference = sampler.batch(40)
    clean = (interference == 0).flatten(1).all(1) & (inputs == backgrounds).flatten(1).all(1)
    assert 28 <= int(clean.sum()) < 40  # about 90%, the rest shadow blends
    photo = torch.from_numpy(scenes[4]).float().mean() / 255
    assert torch.allclose(inputs[clean].mean(dim=(1, 2, 3)), photo, atol=0.08)  # views of photo 4
    with pytest.raises(ValueError, match="hard_clean"):
        BlendSampler(paths, "shadow", params, crop=32, seed=5, scene=48, hard_clean=1.0)


def test_training_mines_at_the_start_every_mine_every_steps_and_at_the_end(tmp_path, photos):
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["data"].update(hard_clean=0.5, mine_every=3)
    path = tmp_path / "hard.yaml"
    path.write_text(yaml.safe_dump(config))
    trainer.train(path, photos, tmp_path / "run", quiet=True)
    mining = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["state"]["mining"]
    assert [m["step"] for m in mining] == [0, 3, 6]
    assert all(0 <= m["below_38db"] <= 12 for m in mining)
