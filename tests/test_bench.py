from __future__ import annotations

from dataclasses import replace

from vstream.bench import SizeResult, bench_size, fidelity
from vstream.config import load_config

from media import make_clip


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
    result = bench_size(sample, "360p", 12, replace(config, encode=replace(config.encode, preset="ultrafast")), tmp_path)
    assert isinstance(result, SizeResult) and result.frames == 12
    assert result.transcode.fps > 0 and result.clean.fps > 0 and result.ratio > 0
    assert result.clean.peak_mb > 10 and result.network_input == "320x180"
