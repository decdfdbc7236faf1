"""Odd frame sizes (yuv420p with ceil(W/2) × ceil(H/2) chroma) are cleaned, at their own size
wherever the encoder takes it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vstream.cli import main

from media import make_clip, read_video

FRAMES = 4


def planes(path: Path) -> list[list[np.ndarray]]:
    """The Y, U, V pixels of every frame of ``path``."""
    with av.open(str(path)) as container:
        return [[np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy() for p in f.planes]
                for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory) -> Path:
    """97x55, lossless (FFV1), so a clean that changes nothing must give back the same planes."""
    return make_clip(tmp_path_factory.mktemp("odd") / "odd.mkv", frames=FRAMES, width=97, height=55,
                     codec="ffv1", audio=False)


def clean(*args):
    return CliRunner().invoke(main, ["clean", *map(str, args), "--workers", "0", "--max-side", "32"],
                              catch_exceptions=False)


@pytest.mark.parametrize("width, height", [(97, 55), (100, 54)])
def test_to_and_from_i420_keep_the_planes_exactly(rng, width, height):
    from vstream.stages.avframes import from_i420, to_i420  # here, so the other tests run without it

    frame = av.VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        pixels = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        pixels[:] = rng.integers(0, 256, pixels.shape, dtype=np.uint8)
    i420 = to_i420(frame)
    assert i420.shape == ((height + height % 2) * 3 // 2, width + width % 2)
    back = from_i420(i420, width, height)
    assert (back.width, back.height) == (width, height)
    for a, b in zip(frame.planes, back.planes):
        assert bytes(np.frombuffer(a, np.uint8).reshape(a.height, -1)[:, : a.width]) == \
               bytes(np.frombuffer(b, np.uint8).reshape(b.height, -1)[:, : b.width])


def test_odd_size_kept_where_the_encoder_takes_it(odd_clip, tmp_path, identity_model, dimming_model):
    same = tmp_path / "same.mkv"
    result = clean(odd_clip, "-o", same, "--codec", "ffv1", "--model", identity_model, "--floor", "0", "-q")
    assert result.exit_code == 0 and result.stderr == "", result.output
    for got, want in zip(planes(same), planes(odd_clip), strict=True):
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    cleaned = tmp_path / "cleaned.mkv"
    assert clean(odd_clip, "-o", cleaned, "--codec", "ffv1", "--model", dimming_model, "-q").exit_code == 0
    frames = read_video(cleaned)[0]
    assert len(frames) == FRAMES and frames[0].shape == (55, 97, 3)
    assert np.abs(frames[0].astype(int) - read_video(odd_clip)[0][0]).mean() > 5


def test_odd_size_padded_by_one_for_x264_with_a_warning(odd_clip, tmp_path, dimming_model):
    out = tmp_path / "out.mp4"
    result = clean(odd_clip, "-o", out, "--model", dimming_model)
    assert result.exit_code == 0 and "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "writing 98x56" in warnings[0] and "keeps 97x55" in warnings[0]
    frames = read_video(out)[0]
    assert len(frames) == FRAMES and frames[0].shape == (56, 98, 3)


def test_half_height_odd_even_size(tmp_path, dimming_model):
    """96x58: even, but its chroma planes (48x29) do not fill whole rows of the I420 array."""
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=96, height=58, audio=False)
    out = tmp_path / "out.mp4"
    result = clean(source, "-o", out, "--model", dimming_model, "-q")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert read_video(out)[0][0].shape == (58, 96, 3)


@pytest.mark.parametrize("stage", ["--no-stationary", "--stationary"])
def test_a_picture_too_small_for_optical_flow_is_cleaned_frame_by_frame(tmp_path, dimming_model, stage):
    """8x8: below the 12 pixels DIS needs. Every frame is then a key frame, and the stationary
    layer has no evidence."""
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=8, height=8, audio=False)
    out = tmp_path / "out.mp4"
    result = clean(source, "-o", out, "--model", dimming_model, stage, "-q")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    frames = read_video(out)[0]
    assert len(frames) == FRAMES and frames[0].shape == (8, 8, 3)
