"""Issue 33, containers and encoders through ``vstream clean``: audio copied into MPEG-TS and
MPEG-PS, stream and file tags kept, ffmpeg's encoder names and each encoder's defaults, cover art,
outputs that cannot hold the video, and what ``-q`` hides (x265's, SVT-AV1's and Ray's own logs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from media import make_clip
from test_bad_input import no_plain_progress, one_line_error, run_clean  # noqa: F401 (a fixture)

FRAMES = 6


def streams_of(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.codec.canonical_name) for s in container.streams]


# Point 10: encoder names and each encoder's defaults.

def needs(encoder: str):
    return pytest.mark.skipif(encoder not in av.codecs_available, reason=f"PyAV's FFmpeg has no {encoder} encoder")


@pytest.mark.parametrize(
    ("codec", "suffix", "written"),
    [
        ("h264", ".mp4", "h264"),  # ffmpeg's name for libx264
        pytest.param("libsvtav1", ".mkv", "av1", marks=needs("libsvtav1")),  # its presets are numbers
        pytest.param("mjpeg", ".mkv", "mjpeg", marks=needs("mjpeg")),  # full-range yuvj420p is its default
    ],
)
def test_each_encoder_gets_its_own_defaults(tmp_path, dimming_model, codec, suffix, written):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    result = run_clean(source, "-o", tmp_path / f"out{suffix}", "--codec", codec, model=dimming_model)
    assert result.exit_code == 0, result.output
    assert streams_of(tmp_path / f"out{suffix}") == [("video", written)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--codec", "libsvtav1", "--preset", "veryfast"], "preset veryfast is not valid for libsvtav1; valid: 0-13",
                     marks=needs("libsvtav1")),
        pytest.param(["--codec", "mjpeg", "--pix-fmt", "yuv420p"],
                     "encoder mjpeg refuses pix_fmt=yuv420p: Non full-range YUV is non-standard", marks=needs("mjpeg")),
    ],
)
def test_a_bad_encoder_combination_is_named(tmp_path, dimming_model, args, message):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    one_line_error(run_clean(source, "-o", tmp_path / "out.mkv", *args, model=dimming_model), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# Point 14: what -q hides (x265's, SVT-AV1's and Ray's own logs), and errors that name the path.

def vstream(*args: object) -> subprocess.CompletedProcess:
    """``vstream ARGS`` in a child process: x265, SVT-AV1 and Ray write to its stderr themselves."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("SVT_LOG", None)
    return subprocess.run([sys.executable, "-m", "vstream", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("codec", [pytest.param(c, marks=needs(c)) for c in ("libx265", "libsvtav1")])
def test_quiet_hides_the_encoders_own_logs(tmp_path, dimming_model, codec):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    done = vstream("clean", source, "-o", tmp_path / "out.mkv", "--codec", codec, "--model", dimming_model,
                   "--workers", "0", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
