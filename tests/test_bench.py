from __future__ import annotations

import time
from dataclasses import replace

import av
import cv2
import numpy as np

from vstream.evaluation.bench import (SizeResult, bench_size, fidelity, schedule_fidelity, slide_fidelity, sliding_crops,
                           still_flicker)
from vstream.config import load_config
from vstream.stagetimes import STAGES, StageTimes

from media import make_clip, synthetic_frame, write_pair


def test_identity_model_with_lossless_encode_is_bit_exact(tmp_path, identity_model):
    clip = make_clip(tmp_path / "in.mp4", frames=8, width=128, height=72)
    config = load_config("default", {"model": str(identity_model), "workers": 0, "encode.crf": 0})
    psnr, frames = fidelity(clip, config, tmp_path)
    assert frames == 8 and psnr == float("inf")


def test_dimming_model_lowers_fidelity(tmp_path, dimming_model):
    clip = make_clip(tmp_path / "in.mp4", frames=8, width=128, height=72)
    config = load_config("default", {"model": str(dimming_model), "workers": 0, "encode.crf": 0})
    psnr, _ = fidelity(clip, config, tmp_path)
    assert psnr < 30


def test_bench_size_reports_both_runs(tmp_path, dimming_model):
    sample = make_clip(tmp_path / "sample.mp4", frames=6, width=64, height=48)
    config = load_config("default", {"model": str(dimming_model), "workers": 0})
    (result,) = bench_size(sample, "360p", 12, replace(config, encode=replace(config.encode, preset="ultrafast")), tmp_path)
    assert isinstance(result, SizeResult) and result.frames == 12
    assert result.transcode.fps > 0 and result.clean.fps > 0 and result.ratio > 0
    assert result.every_frame.fps > 0 and result.every_frame_ratio > 0
    assert result.every_frame.inferred == 1 and result.clean.inferred < 1  # the default preset schedules
    assert result.psnr_vs_every_db > 20 and set(result.clean.stage_ms) == set(STAGES) - {"stationary"}
    assert result.clean.peak_mb > 10 and result.network_input == "320x180"
    assert min(result.transcode.cpu_ms, result.every_frame.cpu_ms, result.clean.cpu_ms) > 0
    assert result.cpu_ratio == result.transcode.cpu_ms / result.clean.cpu_ms
    assert result.every_frame_cpu_ratio == result.transcode.cpu_ms / result.every_frame.cpu_ms


def test_schedule_fidelity_compares_with_every_frame_inference(tmp_path, dimming_model):
    clip = make_clip(tmp_path / "in.mp4", frames=12, width=128, height=72)
    config = load_config("default", {"model": str(dimming_model), "workers": 0})
    result = schedule_fidelity(clip, config, tmp_path)
    assert result.frames == 12 and 0 < result.inferred < 1 and 20 < result.psnr_db < float("inf")
    assert result.flicker_every >= 0 and result.flicker_scheduled >= 0


def write_i420(path, frames):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_still_flicker_is_the_change_of_what_was_removed_where_the_input_is_still(tmp_path):
    still = np.full((72, 64), 120, np.uint8)
    source = write_i420(tmp_path / "in.mkv", [still] * 4)
    steady = write_i420(tmp_path / "steady.mkv", [still - 10] * 4)
    flickering = write_i420(tmp_path / "flicker.mkv", [still - 10 + 4 * (i % 2) for i in range(4)])
    assert still_flicker(source, steady) == 0
    assert still_flicker(source, flickering) == 4.0


def test_sliding_crops_pan_from_corner_to_corner():
    image = np.arange(50 * 70, dtype=np.int32).reshape(50, 70)
    crops = sliding_crops(image, frames=5, share=0.8)
    assert len(crops) == 5 and all(c.shape == (40, 56) for c in crops)
    assert crops[0][0, 0] == image[0, 0] and crops[-1][-1, -1] == image[-1, -1]
    corners = [int(c[0, 0]) for c in crops]
    assert corners == sorted(corners) and len(set(corners)) == 5


def test_slide_fidelity_scores_the_input_and_both_outputs_against_the_background(tmp_path, dimming_model):
    image = cv2.resize(synthetic_frame(0, 40, 30), (200, 150), interpolation=cv2.INTER_CUBIC)
    # What the dimming model takes for the background: 0.8 * input + 0.05.
    background = np.clip(image * 0.8 + 0.05 * 255, 0, 255).round().astype(np.uint8)
    config = load_config("default", {"model": str(dimming_model), "workers": 0})
    result = slide_fidelity(*write_pair(tmp_path / "pairs", "a", image, background), config, tmp_path)
    assert result.name == "a_input" and result.frames == 60 and 0 < result.inferred < 1
    assert result.psnr_input_db < 25 and result.psnr_every_db > result.psnr_input_db + 10
    assert abs(result.psnr_scheduled_db - result.psnr_every_db) < 1.0


def test_stage_times_count_cpu_not_waiting():
    times = StageTimes()
    with times.timing("decode"):
        time.sleep(0.3)  # waiting for a frame (or a core) costs no CPU
    with times.timing("reconstruct"):
        sum(range(2_000_000))
    assert times.seconds["decode"] < 0.05 and times.seconds["reconstruct"] > 0
