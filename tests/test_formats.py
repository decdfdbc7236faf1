"""What each input keeps through ``vstream clean`` (issue 33, points 1, 9, 12, 15): colour tags,
range, bit depth and chroma of video; alpha, grey and 16-bit of images; the displayed picture of a
rotated video in ``--compare``. Each case makes its own media and runs the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vstream.cli import common, main

from media import make_clip

WIDTH, HEIGHT, FRAMES = 64, 48, 4
BT709 = {"colorspace": 1, "color_primaries": 1, "color_trc": 1, "color_range": 1}
HLG_BT2020 = {"colorspace": 9, "color_primaries": 9, "color_trc": 18, "color_range": 1}
COLOUR_TAGS = ("color_range", "colorspace", "color_primaries", "color_trc")


@pytest.fixture(autouse=True)
def no_plain_progress(monkeypatch):
    monkeypatch.setattr(common, "PLAIN_EVERY_S", float("inf"), raising=False)


def run_clean(source: Path, output: Path, *args: str, model: Path):
    """``vstream clean SOURCE -o OUTPUT ARGS`` in-process, without workers; a traceback fails the test."""
    result = CliRunner().invoke(
        main, ["clean", str(source), "-o", str(output), "--model", str(model), "--workers", "0", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "WARNING" in line]


def ramp_planes(width: int, height: int, chroma: tuple[int, int], top: int) -> list[np.ndarray]:
    """Y a horizontal ramp over 0..``top``, U and V 1-pixel columns alternating about the middle
    (detail only full chroma holds), at ``chroma`` = (width, height) of the chroma planes."""
    y = np.broadcast_to(np.linspace(0, top, width).round(), (height, width))
    stripes = np.where(np.arange(chroma[0]) % 2, 0.6, 0.4) * top
    u = np.broadcast_to(stripes, (chroma[1], chroma[0]))
    return [p.astype(np.uint16 if top > 255 else np.uint8) for p in (y, u, u[:, ::-1])]


def make_tagged(path: Path, codec: str, pix_fmt: str, tags: dict[str, int], rotation: int = 0, **options: str) -> Path:
    """A clip of ramp pictures (:func:`ramp_planes`) in ``pix_fmt``, its stream tagged with ``tags``."""
    fmt = av.VideoFormat(pix_fmt)
    chroma = (fmt.chroma_width(WIDTH), fmt.chroma_height(HEIGHT))
    top = (1 << fmt.components[0].bits) - 1
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=24, options=options)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, pix_fmt
        for tag, value in tags.items():
            setattr(video.codec_context, tag, value)
        if rotation:
            video.set_display_rotation(rotation)
        for index in range(FRAMES):
            frame = av.VideoFrame(WIDTH, HEIGHT, pix_fmt)
            for plane, pixels in zip(frame.planes, ramp_planes(WIDTH, HEIGHT, chroma, top)):
                plane_view(plane, pixels.dtype)[:] = pixels
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


def plane_view(plane, dtype) -> np.ndarray:
    rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
    return rows[:, : plane.width]


def stream_tags(path: Path) -> dict[str, int]:
    """The colour tags of a file's video stream, as ffprobe shows them."""
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return {tag: int(getattr(context, tag)) for tag in COLOUR_TAGS}


def first_planes(path: Path) -> tuple[str, list[np.ndarray]]:
    """The pixel format and the planes of a file's first frame, as stored."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
        return frame.format.name, [plane_view(p, dtype).copy() for p in frame.planes]


# Point 1: colour tags, range and depth.

@pytest.mark.parametrize("suffix, codec", [(".mp4", "libx264"), (".mkv", "libx264"), (".mov", "libx264"),
                                           (".webm", "libvpx-vp9"), (".ts", "libx264")])
def test_bt709_input_stays_tagged_bt709_in_every_container(tmp_path, identity_model, suffix, codec):
    source = make_tagged(tmp_path / "in.mp4", "libx264", "yuv420p", BT709)
    out = tmp_path / f"out{suffix}"
    run_clean(source, out, "--codec", codec, model=identity_model)
    assert stream_tags(out) == BT709


@pytest.mark.parametrize("suffix, codec", [(".mp4", "libx264"), (".webm", "libvpx-vp9")])
def test_full_range_input_stays_full_range(tmp_path, identity_model, suffix, codec):
    source = make_tagged(tmp_path / "in.mp4", "libx264", "yuvj420p", {"color_range": 2}, qp="0")
    out = tmp_path / f"out{suffix}"
    run_clean(source, out, "--codec", codec, model=identity_model)
    assert stream_tags(out)["color_range"] == 2  # pc
    (_, (y_in, *_)), (_, (y_out, *_)) = first_planes(source), first_planes(out)
    assert y_out.min() < 4 and y_out.max() > 251  # not squeezed into 16..235
    assert np.abs(y_out.astype(int) - y_in).mean() < 2


def test_10bit_hdr_to_8bit_output_keeps_the_tags_and_warns(tmp_path, identity_model):
    source = make_tagged(tmp_path / "hlg.mkv", "libx265", "yuv420p10le", HLG_BT2020, **{"x265-params": "log-level=none"})
    out = tmp_path / "out.mp4"
    result = run_clean(source, out, model=identity_model)
    assert stream_tags(out) == HLG_BT2020
    assert any("10-bit" in line and "yuv420p10le" in line for line in warnings(result)), result.stderr


def test_10bit_output_carries_10bit_values(tmp_path, identity_model):
    source = make_tagged(tmp_path / "hlg.mkv", "libx265", "yuv420p10le", HLG_BT2020, **{"x265-params": "lossless=1:log-level=none"})
    out = tmp_path / "out.mkv"
    result = run_clean(source, out, "--codec", "ffv1", "--pix-fmt", "yuv420p10le", model=identity_model)  # lossless
    assert not warnings(result), result.stderr
    (_, planes_in), (fmt, planes_out) = first_planes(source), first_planes(out)
    assert fmt == "yuv420p10le"
    for plane_in, plane_out in zip(planes_in, planes_out):
        np.testing.assert_array_equal(plane_out, plane_in)  # not 8-bit values times 4


# Point 9: chroma.

def test_444_input_keeps_full_chroma_with_yuv444p(tmp_path, identity_model):
    source = make_tagged(tmp_path / "in.mp4", "libx264", "yuv444p", BT709, qp="0")
    out = tmp_path / "out.mp4"
    result = run_clean(source, out, "--pix-fmt", "yuv444p", "--crf", "0", model=identity_model)
    assert not warnings(result), result.stderr
    (_, planes_in), (fmt, planes_out) = first_planes(source), first_planes(out)
    assert fmt == "yuv444p"
    for plane_in, plane_out in zip(planes_in, planes_out):
        np.testing.assert_array_equal(plane_out, plane_in)


def test_444_input_cleaned_in_full_chroma(tmp_path, dimming_model):
    """With a model that changes the picture, the chroma correction is applied at full size: the
    1-pixel chroma stripes survive, as does the change."""
    source = make_tagged(tmp_path / "in.mp4", "libx264", "yuv444p", BT709, qp="0")
    out = tmp_path / "out.mp4"
    run_clean(source, out, "--pix-fmt", "yuv444p", "--crf", "0", "--floor", "0", model=dimming_model)
    (_, (y_in, u_in, _)), (_, (y_out, u_out, _)) = first_planes(source), first_planes(out)
    assert np.abs(y_out.astype(int) - y_in).mean() > 3  # the model's change is there
    stripes_in, stripes_out = (np.abs(np.diff(u.astype(int), axis=1)).mean() for u in (u_in, u_out))
    assert stripes_out > 0.8 * stripes_in


def test_444_input_to_420_output_warns(tmp_path, identity_model):
    source = make_tagged(tmp_path / "in.mp4", "libx264", "yuv444p", BT709)
    result = run_clean(source, tmp_path / "out.mp4", model=identity_model)
    assert any("4:4:4" in line and "yuv444p" in line for line in warnings(result)), result.stderr


# Point 12: images.

def image_of(kind: str) -> np.ndarray:
    """A test picture as OpenCV holds it: ``rgba`` (BGRA with an alpha ramp), ``grey``, ``16-bit``."""
    bgr = np.dstack(ramp_planes(WIDTH, HEIGHT, (WIDTH, HEIGHT), 255))
    if kind == "rgba":
        alpha = np.broadcast_to(np.linspace(0, 255, HEIGHT).round().astype(np.uint8)[:, None], (HEIGHT, WIDTH))
        return np.dstack([bgr, alpha])
    if kind == "grey":
        return bgr[..., 0].copy()
    return np.dstack(ramp_planes(WIDTH, HEIGHT, (WIDTH, HEIGHT), 65535))


@pytest.mark.parametrize("kind", ["rgba", "grey", "16-bit"])
def test_png_keeps_alpha_grey_and_16_bit(tmp_path, identity_model, kind):
    image = image_of(kind)
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(source), image)
    result = run_clean(source, out, model=identity_model)
    assert not warnings(result), result.stderr
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.shape == image.shape and written.dtype == image.dtype
    np.testing.assert_array_equal(written, image)  # the identity model removes nothing


def test_png_alpha_passes_through_a_cleaning_model_untouched(tmp_path, dimming_model):
    image = image_of("rgba")
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(source), image)
    run_clean(source, out, "--floor", "0", model=dimming_model)
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written[..., 3], image[..., 3])
    assert np.abs(written[..., :3].astype(int) - image[..., :3]).mean() > 3


@pytest.mark.parametrize("kind, dropped", [("rgba", "alpha"), ("16-bit", "16-bit")])
def test_jpeg_output_names_what_it_drops(tmp_path, identity_model, kind, dropped):
    source, out = tmp_path / "in.png", tmp_path / "out.jpg"
    cv2.imwrite(str(source), image_of(kind))
    result = run_clean(source, out, model=identity_model)
    assert any(dropped in line and ".jpg" in line for line in warnings(result)), result.stderr
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (HEIGHT, WIDTH, 3)


# Point 15: --compare of a rotated video.

def displayed(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as a player shows it: turned by its display rotation (counter-clockwise)."""
    return np.rot90(frame.to_ndarray(format="rgb24"), (frame.rotation or 0) // 90)


def test_compare_of_a_rotated_video_is_side_by_side_as_displayed(tmp_path, identity_model):
    source = make_clip(tmp_path / "rot.mp4", frames=FRAMES, width=WIDTH, height=HEIGHT, rotation=90, audio=False)
    out = tmp_path / "cmp.mp4"
    run_clean(source, out, "--compare", model=identity_model)
    with av.open(str(source)) as a, av.open(str(out)) as b:
        shown_in = displayed(next(a.decode(video=0))).astype(int)
        shown_out = displayed(next(b.decode(video=0))).astype(int)
    assert shown_out.shape[:2] == (WIDTH, 2 * HEIGHT)  # upright 48x64 pictures, side by side
    for half in (shown_out[:, :HEIGHT], shown_out[:, HEIGHT:]):
        assert np.abs(half - shown_in).mean() < 4


@pytest.mark.parametrize("degrees", [90, 180, -90])
def test_an_odd_sized_picture_is_turned_exactly(rng, degrees):
    from vstream.stages.avframes import from_i420, to_i420, turned

    width, height = 97, 55
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane in frame.planes:
        plane_view(plane, np.uint8)[:] = rng.integers(0, 256, (plane.height, plane.width), dtype=np.uint8)
    quarters = degrees // 90
    size = (height, width) if quarters % 2 else (width, height)
    back = from_i420(turned(to_i420(frame), width, height, degrees), *size)
    for plane, turned_plane in zip(frame.planes, back.planes):
        np.testing.assert_array_equal(plane_view(turned_plane, np.uint8), np.rot90(plane_view(plane, np.uint8), quarters))


def test_live_output_keeps_the_colour_tags(tmp_path, identity_model):
    """A live feed's segments are tagged as the feed is (here a full-range BT.709 one, on stdin)."""
    tags = {**BT709, "color_range": 2}
    source = make_tagged(tmp_path / "in.ts", "libx264", "yuvj420p", tags)
    (tmp_path / "rec").mkdir()
    with source.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "vstream", "clean", "-", "--live", "-o", str(tmp_path / "rec" / "cam.mkv"),
             "--model", str(identity_model), "--workers", "0", "--max-wait", "60"],
            stdin=stdin, capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr
    [segment] = (tmp_path / "rec").iterdir()
    assert stream_tags(segment) == tags
