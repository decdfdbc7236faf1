"""The bad inputs of issue 24 through ``vstream clean``: the exit code, one line on stderr (besides
the summary of a run that wrote its output), never a traceback, and nothing under the output
name but a complete file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vstream.cli import common, main

from media import make_clip, read_video, truncated_faststart, zeroed_ctts


@pytest.fixture(autouse=True)
def no_plain_progress(monkeypatch):
    """However slow the machine, no progress line joins the one line these tests count."""
    monkeypatch.setattr(common, "PLAIN_EVERY_S", float("inf"), raising=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("bad") / "clip.mp4", frames=12, width=128, height=72)


def clean(folder: Path, source: Path, *args: str, model: Path):
    """Run ``vstream clean SOURCE -o folder/out.mp4``; (exit code, stderr lines, files in folder after)."""
    out = folder / "out.mp4"
    result = CliRunner().invoke(main, ["clean", str(source), "-o", str(out), "--model", str(model),
                                       "--workers", "0", "--max-side", "64", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr.splitlines(), sorted(p.name for p in folder.iterdir())


def bad_yaml(folder: Path) -> Path:
    path = folder / "bad.yaml"
    path.write_text("encode:\n  crf: [18, 20\n")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "turbo"], "preset turbo is not valid for libx264; valid: ultrafast, superfast, veryfast"),
        (["--preset", "dashcam"], "--preset dashcam is the encoder's speed preset; for the dashcam settings use -c dashcam"),
        (["--crf", "60"], "crf 60 is not valid for libx264; valid: 0-51"),
        (["--codec", "libvpx-vp9", "--crf", "64"], "crf 64 is not valid for libvpx-vp9; valid: 0-63"),
        (["--encoder-opt", "bogus=1"], "encoder libx264 has no option 'bogus'"),
        (["-c", bad_yaml], "line 3, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence"),
        (["-ss", "5"], "start 5 s is past the end of"),
    ],
)
def test_refused_in_one_line_before_anything_is_written(tmp_path, clip, dimming_model, args, message):
    folder = tmp_path / "run"
    folder.mkdir()
    args = [str(a(tmp_path)) if callable(a) else a for a in args]
    code, lines, files = clean(folder, clip, *args, model=dimming_model)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert files == []


def test_truncated_file_says_how_many_frames_of_those_announced(tmp_path, dimming_model):
    """The container announces 40 frames; what is left of them is cleaned, and the shortfall said."""
    source = truncated_faststart(make_clip(tmp_path / "in.mp4", frames=40, audio=False), tmp_path / "cut.mp4", 0.6)
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, source, model=dimming_model)
    decoded = len(read_video(folder / "out.mp4")[0])
    assert code == 0 and 5 < decoded < 40
    assert len(lines) == 2 and lines[1].startswith("wrote "), lines
    assert f"cut.mp4 ended early: {decoded} of the 40 frames its container announces were decoded" in lines[0]
    assert files == ["out.mp4"]


def test_timestamps_that_repeat_or_go_back_are_repaired(tmp_path, dimming_model):
    """Zeroed composition offsets (a damaged ctts) used to crash the muxer with two tracebacks."""
    source = zeroed_ctts(make_clip(tmp_path / "in.mp4", frames=48, audio=False, bframes=3), tmp_path / "bad.mp4")
    _, given, _ = read_video(source)
    assert any(b <= a for a, b in zip(given, given[1:]))  # the damage this test is about
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, source, model=dimming_model)
    assert code == 0
    assert len(lines) == 2 and "frames had out-of-order or repeated timestamps" in lines[0], lines
    _, pts, _ = read_video(folder / "out.mp4")
    assert len(pts) == 48 and all(b > a for a, b in zip(pts, pts[1:]))
    assert files == ["out.mp4"]
