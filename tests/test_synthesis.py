from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vstream.cli import main
from vstream.evaluation.evaluate import find_pairs, read_rgb
from vstream.evaluation.metrics import psnr
from vstream.stages.model_contract import KINDS
from vstream.evaluation.photos import split_photos
from vstream.synthesis import RECIPES, SynthesisParams, feathered_mask, params_for, synthesize
from vstream.synthesis.occlusion import OcclusionParams
from vstream.synthesis.regions import cast_shape_mask

CONFIGS = Path(__file__).parent.parent / "configs" / "train"


def images(rng, size=(64, 80)):
    return (rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(2))


def smooth_images(rng, size=(96, 128)):
    """Photo-like (smooth) images: the recipes blur and refract, which noise would hide."""
    return (cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), size[::-1], interpolation=cv2.INTER_CUBIC)
            for _ in range(2))


def no_clean(kind: str, **values) -> SynthesisParams:
    return params_for(kind, {"clean_fraction": 0.0, **values})


def test_every_kind_of_claim_3_has_a_recipe():
    assert set(RECIPES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_is_background_plus_interference(rng, kind):
    a, b = smooth_images(rng)
    x, background, interference = synthesize(kind, a, b, rng, no_clean(kind))
    assert x.shape == background.shape == interference.shape == (96, 128, 3)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(background, a / 255, atol=1e-6)
    np.testing.assert_allclose(x, background + interference, atol=1e-6)
    assert np.abs(interference).max() > 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_for_a_seed(kind):
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        a, b = smooth_images(np.random.default_rng(1))
        runs.append([synthesize(kind, a, b, rng, no_clean(kind)) for _ in range(3)])
    for first, second in zip(*runs):
        for part_a, part_b in zip(first, second):
            np.testing.assert_array_equal(part_a, part_b)


@pytest.mark.parametrize("kind", KINDS)
def test_clean_samples_have_no_interference(rng, kind):
    a, b = images(rng)
    x, background, interference = synthesize(kind, a, b, rng, params_for(kind, {"clean_fraction": 1.0}))
    np.testing.assert_array_equal(x, background)
    assert not interference.any()


@pytest.mark.parametrize("clean_fraction", [0.0, 1.0])
def test_water_lookalikes_are_bright_blobs_the_label_keeps(rng, clean_fraction):
    dark = np.full((96, 128, 3), 20, np.uint8)
    x, background, interference = synthesize("water", dark, dark, rng,
                                             params_for("water", {"lookalikes": 1.0, "clean_fraction": clean_fraction}))
    blobs = background - dark / 255  # the blobs are in the background label: not to be removed
    assert blobs.min() > -1e-6 and blobs.max() > 0.5
    assert 0.005 < (blobs.max(axis=2) > 0.1).mean() < 0.9  # round patches, not the whole frame
    np.testing.assert_allclose(x, background + interference, atol=1e-6)
    if clean_fraction:
        assert not interference.any()


@pytest.mark.parametrize("kind, level, sign", [("shadow", 160, -1), ("reflection", 20, 1)])
def test_smooth_lookalikes_have_no_edge_and_the_label_keeps_them(rng, kind, level, sign):
    """Scene shading darkens a lit grey, haze lifts a dark one towards a bright airlight; both
    change over a quarter of the frame or more, with no edge as a shadow's or a reflected scene's."""
    flat = np.full((96, 128, 3), level, np.uint8)
    for _ in range(10):
        x, background, interference = synthesize(kind, flat, flat, rng,
                                                  params_for(kind, {"lookalikes": 1.0, "clean_fraction": 1.0}))
        change = sign * (background - level / 255)  # in the background label: not to be removed
        assert change.min() > -1e-6 and change.max() > 0.05
        assert max(np.abs(np.diff(change, axis=0)).max(), np.abs(np.diff(change, axis=1)).max()) < 0.04
        np.testing.assert_array_equal(x, background)
        assert not interference.any()


def test_kinds_without_lookalikes_refuse_them(rng):
    with pytest.raises(ValueError, match="no look-alikes"):
        params_for("occlusion", {"lookalikes": 0.5})
    a, b = images(rng)
    with pytest.raises(ValueError, match="no look-alikes"):  # params built directly, not from a config
        synthesize("occlusion", a, b, rng, OcclusionParams(lookalikes=0.5))


def test_shadow_only_darkens_and_turns_bluish(rng):
    blue_kept = []
    for _ in range(20):
        a, b = smooth_images(rng)
        x, background, interference = synthesize("shadow", a, b, rng, no_clean("shadow", colour_cast=0.3))
        assert interference.max() <= 1e-6
        shaded = interference.sum(axis=2) < -0.05
        blue_kept.append(np.mean(x[shaded] / np.maximum(background[shaded], 1e-3), axis=0))
    ratio = np.mean(blue_kept, axis=0)  # what is left of each channel in the shadow
    assert ratio[2] > ratio[0]


def test_reflection_black_level_leaves_dark_parts_of_the_reflected_scene_clear(rng):
    a, _ = smooth_images(rng)
    reference = np.tile(np.linspace(0, 255, 128, dtype=np.float32).astype(np.uint8), (96, 1))[..., None].repeat(3, 2)
    def layer(black):
        _, _, interference = synthesize("reflection", a, reference, np.random.default_rng(5),
                                        no_clean("reflection", full_fraction=1.0, ghost_fraction=0.0, blur_sigma=(0.5, 0.5),
                                                 strength=(0.5, 0.5), black_level=(black, black)))
        return interference.mean(axis=(0, 2))  # by column: the reference's brightness ramp

    veil, cut = layer(0.0), layer(0.4)
    assert veil[:40].min() > 0 and np.all(cut[:40] == 0)  # the dark third reflects nothing with a black level
    assert abs(cut[-2] - veil[-2]) < 0.02                  # and the brightest part keeps its peak
    with pytest.raises(ValueError, match="black_level"):
        no_clean("reflection", black_level=[0.2, 1.0])  # nothing would be left to reflect


def test_reflection_transmission_dims_the_background_behind_the_glass(rng):
    a, b = smooth_images(rng)
    values = dict(strength=(0.0, 0.0), transmission=(0.7, 0.7))
    x, background, _ = synthesize("reflection", a, b, rng, no_clean("reflection", **values))
    np.testing.assert_allclose(x, 0.7 * background, atol=1e-6)


def test_water_drops_are_local_and_sized_by_params(rng):
    def covered(radius):
        a, b = smooth_images(np.random.default_rng(3))
        _, _, interference = synthesize("water", a, b, np.random.default_rng(4),
                                        no_clean("water", radius=(radius, radius), ring_fraction=0.0, defocus=(0.0, 0.0)))
        return np.mean(np.abs(interference).max(axis=2) > 0.005)

    small, large = covered(0.02), covered(0.06)
    assert 0 < small < large < 0.9


def test_occlusion_is_opaque_where_strong(rng):
    a, b = smooth_images(rng)
    x, background, interference = synthesize("occlusion", a, b, rng,
                                             no_clean("occlusion", strength=(1.0, 1.0), blobs=(1, 1), size=(0.3, 0.3)))
    changed = np.abs(interference).max(axis=2) > 0.01
    assert 0.01 < changed.mean() < 0.9


def test_masks_are_normalised_and_soft(rng):
    for mask in (feathered_mask(64, 64, rng, 0.0, (0.1, 0.1)), cast_shape_mask(64, 64, rng, (0.05, 0.05))):
        assert mask.shape == (64, 64, 1) and mask.max() == pytest.approx(1.0)
        assert 0 < np.mean((mask > 0.05) & (mask < 0.95))  # a feathered border exists


def test_params_for_reads_config_values_and_names_unknown_keys():
    params = params_for("water", {"radius": [0.01, 0.02], "clean_fraction": 0.5})
    assert params.radius == (0.01, 0.02) and params.clean_fraction == 0.5
    with pytest.raises(ValueError, match="unknown shadow synthesis parameter.*blur_sigma"):
        params_for("shadow", {"blur_sigma": [1, 2]})
    with pytest.raises(ValueError, match="no synthesis recipe"):
        params_for("fog")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Training photos are white and held-out ones black, so a sample shows where it came from."""
    folder = tmp_path_factory.mktemp("photos")
    for i in range(24):
        cv2.imwrite(str(folder / f"p{i:02d}.png"), np.zeros((48, 64, 3), np.uint8))
    _, held_out = split_photos(folder, 10)
    assert 2 <= len(held_out) < 24
    for path in set(folder.iterdir()) - set(held_out):
        cv2.imwrite(str(path), np.full((48, 64, 3), 255, np.uint8))
    return folder


def test_synth_sheet_with_real_examples(tmp_path, photos):
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["synth", "--kind", "shadow", "--data", str(photos), "--out", str(out),
                                       "--n", "3", "--size", "64", "--real", str(photos)])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out)).shape == (3 * 64, 4 * 64, 3)


def test_synth_draws_what_a_training_config_synthesises(tmp_path, photos):
    """With --config the sheet uses the config's kind and synthesis section: its look-alikes too,
    which the kind's defaults leave out."""
    config = yaml.safe_load((CONFIGS / "reflection.yaml").read_text())
    config["synthesis"]["lookalikes"] = 1.0
    path = tmp_path / "hazy.yaml"
    path.write_text(yaml.safe_dump(config))
    sheets = {}
    for name, args in (("defaults", ["--kind", "reflection"]), ("config", ["--config", str(path)]),
                       ("both", ["--kind", "reflection", "--config", str(path)])):
        out = tmp_path / f"{name}.png"
        result = CliRunner().invoke(main, ["synth", *args, "--data", str(photos), "--out", str(out),
                                           "--n", "2", "--size", "48", "-q"])
        assert result.exit_code == 0, result.output
        sheets[name] = cv2.imread(str(out))
    background = slice(48, 96)  # the haze stays in the label, so the background column shows it
    assert not np.array_equal(sheets["defaults"][:, background], sheets["config"][:, background])
    assert np.array_equal(sheets["config"], sheets["both"])
    result = CliRunner().invoke(main, ["synth", "--kind", "water", "--config", str(path), "--data", str(photos),
                                       "--out", str(tmp_path / "w.png")])
    assert result.exit_code == 2 and "differs from the config's kind reflection" in result.output
    (tmp_path / "bad.yaml").write_text("kind: reflection\n")
    result = CliRunner().invoke(main, ["synth", "--config", str(tmp_path / "bad.yaml"), "--data", str(photos),
                                       "--out", str(tmp_path / "b.png")])
    assert result.exit_code == 1 and "no synthesis section" in result.output
    assert not (tmp_path / "b.png").exists()
    config["synthesis"]["lookalikes"] = 0.0
    config["data"]["val_percent"] = 100  # every photo held out: the white training ones too
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["synth", "--config", str(path), "--data", str(photos), "--eval-set",
                                       str(tmp_path / "all"), "--n", "8", "--size", "32", "-q"])
    assert result.exit_code == 0, result.output
    assert any(read_rgb(truth).min() > 0 for _, truth in find_pairs(tmp_path / "all")[1])


def test_eval_set_is_deterministic_scoreable_and_held_out(tmp_path, photos):
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(main, ["synth", "--kind", "occlusion", "--data", str(photos), "--eval-set",
                                      str(tmp_path / name), "--n", "4", "--size", "48", "-q"])
        assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 12 and files[:3] == ["000-input.png", "000-label1.png", "000-label2.png"]
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    layout, pairs = find_pairs(tmp_path / "a")
    assert layout == "input / label1" and len(pairs) == 4
    for source, truth in pairs:
        assert read_rgb(truth).max() == 0  # backgrounds come from the held-out (black) photos only
        assert np.isfinite(psnr(read_rgb(source), read_rgb(truth)))


def test_synth_needs_exactly_one_output(tmp_path, photos):
    result = CliRunner().invoke(main, ["synth", "--data", str(photos)])
    assert result.exit_code == 2 and "exactly one of --out" in result.output
    result = CliRunner().invoke(main, ["synth", "--data", str(photos), "--out", str(tmp_path / "s.png"),
                                       "--eval-set", str(tmp_path / "e")])
    assert result.exit_code == 2
