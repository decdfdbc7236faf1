from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from vstream import __version__
from vstream.cli import main

from media import make_clip, read_video, synthetic_frame, write_pair


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("cli") / "clip.mp4", frames=12, width=128, height=72)


def test_version_and_help():
    assert __version__ in invoke("--version").output
    help_text = invoke("clean", "--help").output
    for option in ("--output", "--config", "--workers", "--crf", "--preset", "--pix-fmt", "--compare", "--quiet"):
        assert option in help_text


def test_help_shows_the_encoder_defaults_and_ffmpegs_options():
    help_text = " ".join(invoke("clean", "--help").output.split())
    for default in ("Default: libx264", "Default: veryfast", "Default: 18", "Default: yuv420p"):
        assert default in help_text
    for option in ("-g, --gop", "--tune", "-b:v, --bitrate", "--maxrate", "--bufsize", "--x264-params",
                   "--encoder-opt KEY=VALUE", "-ss, --start TIME", "-t, --duration TIME", "-an, --no-audio",
                   "--progress TARGET", "--progress-format [kv|json]"):
        assert option in help_text


def test_config_help_cannot_be_taken_for_the_encoder_preset():
    help_text = " ".join(invoke("clean", "--help").output.split())
    assert "Preset name" not in help_text
    assert "-c, --config CONFIG Settings file (.yaml) or built-in profile" in help_text
    assert "Not the encoder's speed: that is --preset." in help_text


def test_ffmpegs_options_reach_the_output(tmp_path, dimming_model):
    """-ss/-t cut, -an drops the audio, -g spaces keyframes, --progress writes key=value blocks."""
    from vstream.stages.decode import VideoReader

    clip = make_clip(tmp_path / "in.mp4", frames=48, width=128, height=72)  # 2 s at 24 fps, with audio
    out, progress = tmp_path / "out.mp4", tmp_path / "progress.txt"
    result = invoke("clean", clip, "-o", out, "--model", dimming_model, "--workers", "0", "--max-side", "64",
                    "-ss", "0.5", "-t", "1", "-an", "-g", "6", "--encoder-opt", "sc_threshold=0", "--tune", "film",
                    "--progress", progress)
    assert result.exit_code == 0, result.output
    with VideoReader(out) as reader:
        assert reader.copy_streams == [] and reader.info.frames == 24
        keyframes = [i for i, (_, key) in enumerate(sorted(reader.video_packets())) if key]
    assert keyframes == [0, 6, 12, 18]
    last = progress.read_text().rsplit("progress=continue\n", 1)[-1]
    assert last.startswith("frame=24\ntotal_frames=24\nfps=") and last.endswith("progress=end\n")


def test_bitrate_instead_of_crf(tmp_path, clip, dimming_model):
    out = tmp_path / "out.mp4"
    result = invoke("clean", clip, "-o", out, "--model", dimming_model, "--workers", "0", "-q",
                    "-b:v", "100k", "--maxrate", "150k", "--bufsize", "300k")
    assert result.exit_code == 0, result.output
    both = invoke("clean", clip, "-o", tmp_path / "o2.mp4", "--model", dimming_model, "--crf", "20", "-b:v", "1M")
    assert both.exit_code == 2 and "--crf and --bitrate are alternatives" in both.stderr


def test_clean_writes_the_default_output(clip, dimming_model):
    result = invoke("clean", clip, "--model", dimming_model, "--workers", "0", "--max-side", "64", "-q")
    assert result.exit_code == 0, result.output
    out = clip.with_name("clip.clean.mp4")
    assert len(read_video(out)[0]) == 12
    assert result.stderr == ""  # --quiet
    again = invoke("clean", clip, "--model", dimming_model, "--workers", "0")
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.stderr


def test_floor_flag_keeps_small_corrections_off(tmp_path, dimming_model):
    """The dimming model changes every pixel by at most 0.15: a floor of 0.3 leaves the image as it was."""
    import cv2
    import numpy as np

    from media import synthetic_frame

    image = tmp_path / "still.png"
    cv2.imwrite(str(image), synthetic_frame(0, 96, 64))
    for floor, unchanged in (("0", False), ("0.3", True)):
        out = tmp_path / f"floor{floor}.png"
        assert invoke("clean", image, "--model", dimming_model, "--floor", floor, "-o", out, "-q").exit_code == 0
        assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(image))) is unchanged


def test_progress_and_summary_on_stderr(clip, dimming_model, tmp_path):
    result = invoke("clean", clip, "-o", tmp_path / "o.mp4", "--model", dimming_model, "--workers", "0")
    assert result.exit_code == 0
    assert "frame" in result.stderr and "wrote" in result.stderr and result.stdout == ""


def bad_cases(tmp_path: Path, clip: Path, model: Path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    broken_model = tmp_path / "broken.onnx"
    broken_model.write_bytes(b"\x00" * 64)
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("max_sidee: 3\n")
    out = tmp_path / "out.mp4"
    return [
        (["clean", tmp_path / "missing.mp4", "--model", model], "input not found"),
        (["clean", text, "-o", out, "--model", model], "cannot open"),
        (["clean", clip, "-o", clip, "-y", "--model", model], "same file as the input"),
        (["clean", clip, "-o", tmp_path / "no" / "dir.mp4", "--model", model], "output folder does not exist"),
        (["clean", clip, "-o", out, "--model", tmp_path / "missing.onnx", "--workers", "0"], "model file not found"),
        (["clean", clip, "-o", out, "--model", broken_model, "--workers", "0"], "cannot load model"),
        (["clean", clip, "-o", out, "--model", model, "-c", bad_config], "unknown config key 'max_sidee'"),
        (["clean", clip, "-o", out, "--model", model, "--codec", "nope"], "unknown video encoder"),
    ]


def test_exception_one_line_errors_and_nothing_written(tmp_path, clip, dimming_model):
    for args, message in bad_cases(tmp_path, clip, dimming_model):
        before = sorted(p.name for p in tmp_path.rglob("*"))
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: ") and message in lines[-1], (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, args


def test_usage_error_exit_2(clip):
    result = invoke("clean", clip, "--strength", "3")
    assert result.exit_code == 2


def test_credentials_never_reach_errors(tmp_path, dimming_model):
    result = invoke("clean", "rtsp://admin:hunter2@127.0.0.1:9/cam", "-o", tmp_path / "o.mp4",
                    "--model", dimming_model, "--workers", "0", "--max-retries", "0", "--open-timeout", "2")
    assert result.exit_code == 1
    assert "hunter2" not in result.output and "admin:" not in result.output
    assert "rtsp://***@127.0.0.1:9/cam" in result.stderr


def test_bench_reports_every_frame_and_scheduled_runs(clip, dimming_model, tmp_path):
    result = invoke("bench", "--input", clip, "--sizes", "360p", "--frames", "10", "--fidelity", clip,
                    "--model", dimming_model, "--workers", "0", "--preset", "ultrafast")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "scheduled vs every-frame" in lines[1] and "still-region flicker" in lines[1]
    assert lines[2].split()[:3] == ["size", "transcode", "every-frame"] and lines[3].startswith("360p")
    assert lines[4].split() == ["ms", "per", "frame:", "decode", "pyramid", "schedule", "infer", "stationary", "smooth",
                                "reconstruct", "encode"]
    assert lines[5].split()[:2] == ["360p", "every-frame"] and lines[6].split()[:2] == ["360p", "scheduled"]
    assert lines[7].startswith("360p   CPU ms per frame (all threads): transcode ") and "CPU ratio" in lines[7]


def test_bench_repeat_runs_rounds_and_prints_each_ratios_spread(clip, dimming_model):
    result = invoke("bench", "--input", clip, "--sizes", "360p", "--frames", "10", "--repeat", "2",
                    "--model", dimming_model, "--workers", "0", "--preset", "ultrafast")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(line.startswith("360p ") and "dB" in line for line in lines) == 2  # a row per round
    summary = lines[-1]
    assert summary.startswith("360p   over 2 rounds, median (range): every-frame ")
    assert "scheduled " in summary and "CPU ratio scheduled " in summary


def test_bench_slide_pans_over_each_pair_and_compares_both_schedules(dimming_model, tmp_path):
    pairs = tmp_path / "pairs"
    for name in ("a", "b"):
        write_pair(pairs, name, synthetic_frame(3, 96, 64), synthetic_frame(3, 96, 64))
    result = invoke("bench", "--sizes", "", "--slide", pairs, "--model", dimming_model, "--workers", "0", "-q")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert [r.split()[:2] for r in rows[:2]] == [["slide", "a_input"], ["slide", "b_input"]]
    assert "background PSNR: input inf, every-frame" in rows[0]  # the input is its own background here
    assert rows[2].startswith("slide: 2 clips, scheduled - every-frame background PSNR mean ")


def test_bench_slide_needs_ground_truth_before_any_run(clip, dimming_model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p.png"), synthetic_frame(0, 64, 48))
    result = invoke("bench", "--input", clip, "--sizes", "360p", "--slide", photos, "--model", dimming_model,
                    "--workers", "0")
    assert result.exit_code == 2 and "has no ground truth" in result.output
    assert "bench 360p" not in result.output  # refused before the speed runs, not after them
