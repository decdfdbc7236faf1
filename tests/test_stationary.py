"""The stationary layer (vstream.stages.stationary): found where the scene moves behind it, held
where it stands still, restarted at cuts, and removed through the pipeline only when enabled."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from vstream.config import ConfigError, load_config
from vstream.drivers.pipeline import clean_video, default_in_flight
from vstream.evaluation.metrics import psnr
from vstream.stages.stationary import StationaryConfig, StationaryLayer

H, W = 90, 160


def texture(seed: int = 0, size: int = 400) -> np.ndarray:
    """A large smooth-noise RGB scene to pan over, uint8."""
    noise = np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3) * 3 - 255, 0, 255).astype(np.uint8)


def scene(frame: int, scene_texture: np.ndarray, still_from: int | None = None) -> np.ndarray:
    """The scene at ``frame``: a window panning along a circle (so the motion takes every
    direction), standing still from ``still_from`` on."""
    t = frame if still_from is None else min(frame, still_from)
    x = 100 + 60 * np.cos(t / 15)
    y = 100 + 60 * np.sin(t / 15)
    shift = np.float32([[1, 0, -x], [0, 1, -y]])
    return cv2.warpAffine(scene_texture, shift, (W, H), flags=cv2.INTER_LINEAR)


def layer() -> np.ndarray:
    """A soft, additive layer (0..1 float32) fixed in the picture: two blobs."""
    out = np.zeros((H, W, 3), np.float32)
    cv2.circle(out, (50, 40), 18, (0.25, 0.2, 0.15), -1)
    cv2.circle(out, (115, 55), 12, (0.1, 0.15, 0.25), -1)
    return cv2.GaussianBlur(out, (0, 0), 4)


def composite(background: np.ndarray, added: np.ndarray) -> np.ndarray:
    return np.clip(background + added * 255 + 0.5, 0, 255).astype(np.uint8)


def run(frames: list[np.ndarray], config: StationaryConfig = StationaryConfig(enabled=True)) -> tuple[StationaryLayer, list[np.ndarray | None]]:
    estimator = StationaryLayer(config, scene_cut=0.18)
    layers = []
    for frame in frames:
        epoch = estimator.observe(frame)
        layers.append(estimator.layer(epoch, frame.shape[:2]))
    return estimator, layers


def test_a_layer_fixed_in_the_picture_is_found_where_the_scene_moves_behind_it():
    scene_texture, truth = texture(), layer()
    backgrounds = [scene(t, scene_texture) for t in range(150)]
    _, layers = run([composite(b, truth) for b in backgrounds])
    estimate = layers[-1]
    assert estimate is not None and estimate.min() >= 0.0  # additive: never negative
    assert np.corrcoef(estimate.ravel(), truth.ravel())[0, 1] > 0.8
    observed = composite(backgrounds[-1], truth)
    cleaned = np.clip(observed - estimate * 255 + 0.5, 0, 255).astype(np.uint8)
    assert psnr(cleaned, backgrounds[-1]) > psnr(observed, backgrounds[-1]) + 4.0


def test_a_moving_scene_with_no_layer_is_left_alone():
    scene_texture = texture(1)
    frames = [scene(t, scene_texture) for t in range(120)]
    _, layers = run(frames)
    assert layers[-1] is not None and float(np.abs(layers[-1]).mean()) < 0.01


def test_no_motion_no_evidence_a_still_scene_is_never_taken_for_the_layer():
    still = scene(0, texture(2))
    _, layers = run([still] * 60)
    assert all(estimate is None or float(estimate.max()) < 0.01 for estimate in layers)


def test_the_estimate_is_held_while_the_scene_stands_still():
    scene_texture, truth = texture(3), layer()
    frames = [composite(scene(t, scene_texture, still_from=120), truth) for t in range(300)]
    _, layers = run(frames)
    moving, stopped = layers[119], layers[-1]
    assert np.abs(stopped - moving).mean() < 0.1 * np.abs(moving).mean()


def test_a_scene_cut_starts_a_new_estimate_and_earlier_frames_keep_theirs():
    truth = layer()
    first = [composite(scene(t, texture(4)), truth) for t in range(100)]
    second = [np.full((H, W, 3), 200, np.uint8)] * 5  # a cut to a flat grey picture
    estimator, layers = StationaryLayer(StationaryConfig(enabled=True), scene_cut=0.18), []
    epochs = [estimator.observe(frame) for frame in first + second]
    assert estimator.cuts == 1 and epochs[0] == epochs[99] != epochs[100]
    before = estimator.layer(epochs[99], (H, W))  # asked after the cut, as a file's look-ahead does
    assert before is not None and np.corrcoef(before.ravel(), truth.ravel())[0, 1] > 0.7
    assert estimator.layer(epochs[100], (H, W)) is None


@pytest.mark.parametrize("key, value, message", [
    ("stationary.gap", 0, "stationary.gap must be at least 1"),
    ("stationary.memory", 0, "stationary.memory must be above 0"),
    ("stationary.enabled", "yes", "config key stationary.enabled must be true or false, got 'yes'"),
])
def test_bad_stationary_settings_are_named(key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config("default", {key: value})


def test_files_look_ahead_and_live_feeds_do_not():
    config = load_config("default", {"stationary.enabled": True, "workers": 0})
    assert default_in_flight(config, 0, look_ahead=True) == config.stationary.look_ahead
    assert default_in_flight(config, 0) == default_in_flight(load_config("default", {"workers": 0}), 0)


def write_clip(path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        stream.options = {"qp": "0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def read_clip(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_the_pipeline_removes_the_layer_only_when_enabled(tmp_path):
    scene_texture, truth = texture(5), layer()
    backgrounds = [scene(t, scene_texture) for t in range(120)]
    source = tmp_path / "glass.mkv"
    write_clip(source, [composite(b, truth) for b in backgrounds])
    lossless = {"workers": 0, "strength": 1.0, "encode.pix_fmt": "yuv444p", "encode.options": {"qp": "0"}}
    scores = {}
    for enabled in (False, True):
        output = tmp_path / f"out-{enabled}.mkv"
        report = clean_video(str(source), output, load_config("default", {**lossless, "stationary.enabled": enabled}))
        assert report.frames == 120
        cleaned = read_clip(output)
        scores[enabled] = np.mean([psnr(c, b) for c, b in zip(cleaned[60:], backgrounds[60:])])
        if enabled:
            assert report.stage_ms.get("stationary", 0) > 0
        else:
            assert "stationary" not in report.stage_ms
    assert scores[True] > scores[False] + 3.0
