from __future__ import annotations

import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vstream.cli import main
from vstream.errors import InputOpenError
from vstream.evaluation import stationary_set
from vstream.evaluation.stationary_set import Recipe, build_stationary_set, place_layer, read_manifest, rgb_frames

TINY = (
    Recipe("a_dome_stop", "a.mp4", "dome", 0, 0.3, 1, frames=12, stop=(4, 4)),
    Recipe("a_photo_cut", "a.mp4", "photo", 1, 0.3, 2, frames=12, cut=("b.mp4", 2, 6)),
    Recipe("b_dirt", "b.mp4", "dirt", 0, 0.4, 3, frames=8),
)


def noise_clip(path: Path, width: int, height: int, seed: int, frames: int = 20) -> None:
    """A texture of smooth noise sliding one pixel a frame."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(30, 200, (height, width + frames, 3)).astype(np.float32), (0, 0), 1.5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            rgb = np.clip(texture[:, i : i + width], 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    for folder in ("videos", "photos", "train_real/dome_reflection_layers"):
        (root / folder).mkdir(parents=True)
    noise_clip(root / "videos" / "a.mp4", 64, 48, 0)
    noise_clip(root / "videos" / "b.mp4", 80, 48, 1)  # another aspect: cropped to a's for the cut
    y, x = np.mgrid[0:60, 0:80]
    for path, seed in ((root / "train_real/dome_reflection_layers/layer_00.jpg", 2), (root / "photos/p0.jpg", 3),
                       (root / "photos/p1.jpg", 4)):
        rgb = np.stack([x * 3, y * 4, np.full_like(x, 40 * seed)], axis=-1) % 200
        cv2.imwrite(str(path), rgb.astype(np.uint8))
    monkeypatch.setattr(stationary_set, "RECIPES", TINY)
    return root


def test_set_builds_deterministically(data_root, tmp_path):
    first = build_stationary_set(data_root, tmp_path / "one")
    build_stationary_set(data_root, tmp_path / "two")
    assert [p.name for p in first] == ["a_dome_stop.input.mkv", "a_photo_cut.input.mkv", "b_dirt.input.mkv"]
    assert (tmp_path / "one/manifest.json").read_text() == (tmp_path / "two/manifest.json").read_text()
    for one, two in zip(read_manifest(tmp_path / "one"), read_manifest(tmp_path / "two")):
        for key in ("input", "clean"):
            assert all(np.array_equal(a, b) for a, b in zip(rgb_frames(one[key]), rgb_frames(two[key])))
    clips = {clip["name"]: clip for clip in read_manifest(tmp_path / "one")}
    assert [clips[n]["frames"] for n in clips] == [12, 12, 8]
    assert (clips["a_photo_cut"]["width"], clips["a_photo_cut"]["height"]) == (64, 48)
    assert clips["b_dirt"]["data"] == [str(data_root / "videos" / "b.mp4")]


def test_input_is_clean_plus_the_layer_at_its_opacity(data_root, tmp_path):
    build_stationary_set(data_root, tmp_path / "set")
    for clip in read_manifest(tmp_path / "set"):
        layer = cv2.cvtColor(cv2.imread(clip["layer"]), cv2.COLOR_BGR2RGB)
        assert layer.max() > 50, clip["name"]
        frames = list(zip(rgb_frames(clip["input"]), rgb_frames(clip["clean"])))
        assert len(frames) == clip["frames"] == len(clip["gain"]) == len(clip["shift"])
        for (dirty, clean), gain, shift in zip(frames, clip["gain"], clip["shift"]):
            assert 0.85 <= gain <= 1.15 and math.hypot(*shift) <= 0.5
            expected = place_layer(layer, clip["opacity"] * gain, tuple(shift))
            unclipped = clean.astype(np.float32) + expected < 250
            error = np.abs(dirty.astype(np.float32) - clean - expected)[unclipped]
            assert error.mean() < 0.8 and error.max() <= 4, clip["name"]


def test_stop_and_cut(data_root, tmp_path):
    build_stationary_set(data_root, tmp_path / "set")
    clips = {clip["name"]: clip for clip in read_manifest(tmp_path / "set")}
    stop = np.array(list(rgb_frames(clips["a_dome_stop"]["clean"]))).astype(int)
    change = np.abs(np.diff(stop, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(change[4:8] == 0) and np.all(change[:4] > 0) and np.all(change[8:] > 0)
    dirty = np.array(list(rgb_frames(clips["a_dome_stop"]["input"]))).astype(int)
    assert np.abs(np.diff(dirty, axis=0)).mean(axis=(1, 2, 3))[4:8].min() > 0  # the layer still drifts
    cut = np.array(list(rgb_frames(clips["a_photo_cut"]["clean"]))).astype(int)
    change = np.abs(np.diff(cut, axis=0)).mean(axis=(1, 2, 3))
    assert change.argmax() == 5 and change[5] > 3 * np.delete(change, 5).max()


def test_missing_data_is_one_line(tmp_path):
    with pytest.raises(InputOpenError, match="not found"):
        build_stationary_set(tmp_path / "nothing", tmp_path / "set")
    result = CliRunner().invoke(main, ["eval", "--make-stationary-set", str(tmp_path / "set"),
                                       "--from-data", str(tmp_path / "nothing"), "-q"])
    assert result.exit_code == 1 and "not found" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "set").exists()


def test_eval_needs_data_or_a_set():
    result = CliRunner().invoke(main, ["eval"])
    assert result.exit_code == 2 and "--data or --stationary-set" in result.output


def test_eval_scores_the_set_through_the_cli(data_root, tmp_path, dimming_model):
    folder = tmp_path / "set"
    made = CliRunner().invoke(main, ["eval", "--make-stationary-set", str(folder), "--from-data", str(data_root), "-q"])
    assert made.exit_code == 0, made.output
    args = ["eval", "--stationary-set", str(folder), "--methods", "identity,network",
            "--model", str(dimming_model), "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [(c, m) for c in ("a_dome_stop", "a_photo_cut", "b_dirt", "MEAN")
                                            for m in ("identity", "network")]
    for row in rows:
        if row[2] == "identity":
            assert len(row) == 7 and 15 < float(row[3]) < 45  # no ΔPSNR, ΔgPSNR
        else:
            assert len(row) == 9 and math.isfinite(float(row[3])) and float(row[4]) != 0
    scores = json.loads(CliRunner().invoke(main, args + ["--json", "--methods", "identity"]).stdout)
    assert [s["clip"] for s in scores] == ["a_dome_stop", "a_photo_cut", "b_dirt", "MEAN"]
    assert scores[-1]["frames"] == 32
    bad = CliRunner().invoke(main, ["eval", "--stationary-set", str(folder), "--methods", "convex"])
    assert bad.exit_code == 2 and "network+stationary" in bad.output
