"""Issue 33, containers and encoders through ``vstream clean``: audio copied into MPEG-TS and
MPEG-PS, stream and file tags kept, ffmpeg's encoder names and each encoder's defaults, cover art,
outputs that cannot hold the video, and what ``-q`` hides (x265's, SVT-AV1's and Ray's own logs)."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import pytest

from media import make_clip, synthetic_frame
from test_bad_input import no_plain_progress, one_line_error, run_clean  # noqa: F401 (a fixture)

FRAMES = 6


def write_clip(
    path: Path, audio: str = "aac", video: bool = True, cover: bool = False, subtitles: bool = False,
    tags: dict[str, str] | None = None,
) -> Path:
    """A 64x48 clip of :data:`FRAMES` frames with one ``audio`` stream tagged French, and optionally
    a subtitle stream tagged English, cover art (an attached picture) and file ``tags``."""
    with av.open(str(path), "w") as out:
        out.metadata.update(tags or {})
        sound = out.add_stream(audio, rate=48000)
        sound.layout = "mono"
        sound.metadata.update({"language": "fra", "title": "Commentaire"})
        picture = _video_stream(out, "libx264", 64, 48, "yuv420p") if video else None
        art = _video_stream(out, "mjpeg", 32, 32, "yuvj420p") if cover else None
        caption = out.add_mux_stream("subrip") if subtitles else None
        if caption is not None:
            caption.metadata.update({"language": "eng", "title": "Sous-titres"})
            caption.time_base = Fraction(1, 1000)
        if art is not None:
            art.disposition = av.stream.Disposition.attached_pic
            _encode_pictures(out, art, 1)
        if picture is not None:
            _encode_pictures(out, picture, FRAMES)
        _encode_silence(out, sound, seconds=FRAMES / 24)
        if caption is not None:
            _mux_subtitle(out, caption, "Hello")
    return path


def _video_stream(out: av.container.OutputContainer, codec: str, width: int, height: int, pix_fmt: str):
    stream = out.add_stream(codec, rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    return stream


def _encode_pictures(out: av.container.OutputContainer, stream: av.video.stream.VideoStream, count: int) -> None:
    for i in range(count):
        rgb = synthetic_frame(i, stream.width, stream.height)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt)
        frame.pts = i
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _encode_silence(out: av.container.OutputContainer, sound: av.audio.stream.AudioStream, seconds: float) -> None:
    samples = sound.codec_context.frame_size or 1024
    sample_format = sound.codec_context.codec.audio_formats[0].name
    for start in range(0, int(48000 * seconds) + samples, samples):
        frame = av.AudioFrame(format=sample_format, layout="mono", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, start
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))


def _mux_subtitle(out: av.container.OutputContainer, stream: av.stream.Stream, text: str) -> None:
    packet = av.Packet(text.encode())
    packet.stream, packet.time_base = stream, Fraction(1, 1000)
    packet.pts = packet.dts = 0
    packet.duration = 200
    out.mux(packet)


def streams_of(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.codec.canonical_name) for s in container.streams]


def warnings_in(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "WARNING" in line]


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


# Point 4: MPEG-TS and MPEG-PS take the audio that FFmpeg cannot vouch for beforehand.

@pytest.mark.parametrize(("suffix", "audio"), [(".ts", "aac"), (".mts", "aac"), (".mpg", "mp2"), (".vob", "ac3")])
def test_audio_is_copied_into_mpeg_ts_and_ps(tmp_path, dimming_model, suffix, audio):
    source = write_clip(tmp_path / "in.mkv", audio=audio)
    result = run_clean(source, "-o", tmp_path / f"out{suffix}", model=dimming_model, quiet=False)
    assert result.exit_code == 0, result.output
    assert ("audio", audio) in streams_of(tmp_path / f"out{suffix}")
    assert not warnings_in(result)


def test_audio_mpeg_ps_cannot_hold_is_named_in_a_warning(tmp_path, dimming_model):
    source = write_clip(tmp_path / "in.mp4", audio="aac")
    result = run_clean(source, "-o", tmp_path / "out.mpg", model=dimming_model, quiet=False)
    assert result.exit_code == 0, result.output
    assert streams_of(tmp_path / "out.mpg") == [("video", "h264")]
    (warning,) = warnings_in(result)
    assert "not copying audio stream 0 (aac): mpeg cannot hold it: Unsupported audio codec" in warning


# Point 8: the tags of the file and of its streams.

def test_file_and_stream_tags_are_kept(tmp_path, dimming_model):
    source = write_clip(tmp_path / "in.mkv", subtitles=True, tags={"title": "Rue", "comment": "kept"})
    result = run_clean(source, "-o", tmp_path / "out.mkv", model=dimming_model)
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mkv")) as out:
        assert out.metadata["title"] == "Rue" and out.metadata["COMMENT"] == "kept"
        (sound,), (subtitle,) = out.streams.audio, out.streams.subtitles
        assert (sound.metadata["language"], sound.metadata["title"]) == ("fra", "Commentaire")
        assert (subtitle.metadata["language"], subtitle.metadata["title"]) == ("eng", "Sous-titres")


def test_mp4_keeps_the_title_creation_time_and_languages(tmp_path, dimming_model):
    source = write_clip(tmp_path / "in.mp4", tags={"title": "Rue", "creation_time": "2024-05-01T10:00:00.000000Z"})
    result = run_clean(source, "-o", tmp_path / "out.mp4", model=dimming_model)
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.metadata["title"] == "Rue"
        assert out.metadata["creation_time"] == "2024-05-01T10:00:00.000000Z"
        assert out.streams.audio[0].language == "fra"


# Point 6: outputs that cannot hold what is written.

@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("out.webm", "cannot write {out}: webm refuses libx264 video: 'webm' format does not support 'libx264' codec; "
                     "pass --codec libvpx-vp9"),
        ("out.gif", "cannot write {out}: gif refuses libx264 video"),
        ("out.png", "cannot write a video to {out}: an image holds one frame; use .mp4, .mkv"),
        ("out.jpg", "cannot write a video to {out}: an image holds one frame"),
    ],
)
def test_an_output_that_cannot_hold_the_video_is_named(tmp_path, dimming_model, name, message):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    out = tmp_path / name
    one_line_error(run_clean(source, "-o", out, model=dimming_model), message.format(out=out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_the_codec_an_error_suggests_writes_that_container(tmp_path, dimming_model):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    result = run_clean(source, "-o", tmp_path / "out.gif", "--codec", "gif", model=dimming_model)
    assert result.exit_code == 0, result.output
    assert streams_of(tmp_path / "out.gif") == [("video", "gif")]


# Point 11: cover art is not a video.

def test_an_audio_file_with_cover_art_has_no_video(tmp_path, dimming_model):
    source = write_clip(tmp_path / "song.mp4", video=False, cover=True)
    one_line_error(run_clean(source, "-o", tmp_path / "out.mp4", model=dimming_model),
                   "no video stream in " + str(source) + " (only cover art, an attached picture)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp4"]


def test_cover_art_beside_a_video_is_dropped_with_a_warning(tmp_path, dimming_model):
    source = write_clip(tmp_path / "in.mp4", cover=True)
    result = run_clean(source, "-o", tmp_path / "out.mp4", model=dimming_model, quiet=False)
    assert result.exit_code == 0, result.output
    assert streams_of(tmp_path / "out.mp4") == [("video", "h264"), ("audio", "aac")]
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.streams.video[0].frames == FRAMES
    (warning,) = warnings_in(result)
    assert "not copying the cover art of" in warning and "an attached picture" in warning


# Point 6 (a still image) and 14 (a folder that takes no files): one line naming the output.

def test_a_still_image_to_a_video_name_is_one_line(tmp_path, dimming_model):
    image = tmp_path / "window.png"
    cv2.imwrite(str(image), synthetic_frame(0, 64, 48))
    one_line_error(run_clean(image, "-o", tmp_path / "x.mp4", model=dimming_model),
                   f"cannot write an image as {tmp_path / 'x.mp4'}: use .png, .jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["window.png"]


def test_an_output_folder_that_takes_no_files_is_named(tmp_path, dimming_model):
    source = make_clip(tmp_path / "in.mp4", frames=FRAMES, width=64, height=48, audio=False)
    one_line_error(run_clean(source, "-o", "/proc/out.mp4", model=dimming_model), "cannot write /proc/out.mp4: ")


# Points 4 and 14 in archives: MPEG-TS keeps its audio, and Ray starts without its token warning.

def test_an_archive_of_mpeg_ts_keeps_its_audio_without_rays_token_warning(tmp_path, dimming_model):
    folder = tmp_path / "archive"
    folder.mkdir()
    write_clip(folder / "cam.ts")
    done = vstream("clean", folder, "-o", tmp_path / "clean", "--model", dimming_model, "--workers", "0",
                   "--jobs", "1", "-q")
    assert done.returncode == 0, done.stderr
    assert ("audio", "aac") in streams_of(tmp_path / "clean" / "cam.ts")
    assert "Token authentication" not in done.stderr
