from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vstream.stages import colour
from vstream.stages.decode import VideoReader
from vstream.stages.encode import EncodeSettings, VideoWriter
from vstream.errors import ConfigError
from vstream.stages.frame import Frame

from media import audio_packets, make_clip, read_video, synthetic_frame


def copy_through(src, dst, settings=EncodeSettings()):
    """Decode src and re-encode every frame unchanged, copying audio: the pipeline minus the model."""
    with VideoReader(src) as reader:
        writer = None
        early = []
        for item in reader.items():
            if not isinstance(item, Frame):
                (writer.copy(item) if writer else early.append(item))
                continue
            if writer is None:
                writer = VideoWriter(dst, reader.info, settings, reader.copy_streams, rotation=reader.rotation)
                for p in early:
                    writer.copy(p)
            writer.write(item.i420, item.pts)
        writer.close()


def test_timestamps_audio_and_count_survive(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30)
    copy_through(src, tmp_path / "out.mp4")
    (a, a_pts, a_tb), (b, b_pts, b_tb) = read_video(src), read_video(tmp_path / "out.mp4")
    assert len(a) == len(b) == 30
    assert [p * a_tb for p in a_pts] == [p * b_tb for p in b_pts]
    assert audio_packets(src) == audio_packets(tmp_path / "out.mp4")


def test_variable_frame_rate_timestamps(tmp_path):
    src = make_clip(tmp_path / "vfr.mkv", frames=24, vfr=True)
    copy_through(src, tmp_path / "out.mkv")
    (_, a_pts, a_tb), (_, b_pts, b_tb) = read_video(src), read_video(tmp_path / "out.mkv")
    assert len(set(np.diff(a_pts))) > 1, "the source should really be VFR"
    assert [p * a_tb for p in a_pts] == [p * b_tb for p in b_pts]


def test_rotation_metadata_kept(tmp_path):
    import av

    src = make_clip(tmp_path / "rot.mp4", frames=4, rotation=90, audio=False)
    copy_through(src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert next(c.decode(video=0)).rotation == 90


def test_other_pix_fmt(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=5, audio=False)
    copy_through(src, tmp_path / "out.mkv", EncodeSettings(codec="libx264", pix_fmt="yuv444p", crf=0, preset="ultrafast"))
    frames, _, _ = read_video(tmp_path / "out.mkv")
    assert len(frames) == 5


def test_fallback_pts_when_the_source_has_none(tmp_path):
    from vstream.stages.decode import VideoInfo

    info = VideoInfo(64, 48, Fraction(1, 25), Fraction(25), 0, None, "rawvideo")
    with VideoWriter(tmp_path / "o.mp4", info, EncodeSettings()) as writer:
        for i in range(5):
            writer.write(colour.from_rgb(synthetic_frame(i, 64, 48)), None)
    _, pts, time_base = read_video(tmp_path / "o.mp4")
    assert [p * time_base for p in pts] == [Fraction(i, 25) for i in range(5)]


@pytest.mark.parametrize(("kwargs", "message"), [({"codec": "nope"}, "unknown video encoder"), ({"codec": "aac"}, "not a video encoder")])
def test_exception(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EncodeSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "turbo"}, "preset turbo is not valid for libx264; valid: ultrafast, superfast, veryfast"),
        ({"preset": "dashcam"}, "preset dashcam is not valid for libx264; valid: ultrafast"),
        ({"tune": "fast"}, "tune fast is not valid for libx264; valid: film, animation"),
        ({"codec": "libvpx-vp9", "tune": "film"}, "tune film is not valid for libvpx-vp9; valid: psnr, ssim"),
        ({"options": {"bogus": "1"}}, "encoder libx264 has no option 'bogus'"),
        ({"gop": 10, "options": {"g": "ten"}}, "encoder libx264 refuses"),
        ({"maxrate": "4M"}, "maxrate needs bufsize"),
    ],
)
def test_exception_encoder_options_checked_against_the_encoder(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EncodeSettings(**kwargs)


def test_crf_range_is_the_encoders():
    """libx264 would clamp 60 to 51 without a word; libvpx-vp9 takes up to 63."""
    EncodeSettings(crf=51)
    with pytest.raises(ConfigError, match="crf 60 is not valid for libx264; valid: 0-51"):
        EncodeSettings(crf=60)
    EncodeSettings(codec="libvpx-vp9", crf=60, preset=None)
    with pytest.raises(ConfigError, match="crf 64 is not valid for libvpx-vp9; valid: 0-63"):
        EncodeSettings(codec="libvpx-vp9", crf=64)


def test_options_named_as_in_ffmpeg():
    settings = EncodeSettings(tune="film", gop=12, bitrate="2M", maxrate="3M", bufsize="4M",
                              options={"x264-params": "aq-mode=3"})
    assert settings.av_options == {"preset": "veryfast", "tune": "film", "g": "12", "b": "2M", "maxrate": "3M",
                                   "bufsize": "4M", "x264-params": "aq-mode=3"}  # a bitrate instead of crf
    assert EncodeSettings(crf=18.5).av_options == {"crf": "18.5", "preset": "veryfast"}
    assert EncodeSettings(codec="libvpx-vp9").av_options == {"crf": "18"}  # vp9 has no preset


def test_gop_sets_the_keyframe_interval(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=12, audio=False)
    copy_through(src, tmp_path / "out.mp4", EncodeSettings(gop=4, options={"sc_threshold": "0"}))
    with VideoReader(tmp_path / "out.mp4") as reader:
        keyframes = [i for i, (_, key) in enumerate(sorted(reader.video_packets())) if key]
    assert keyframes == [0, 4, 8]


def test_pts_that_repeat_or_go_back_are_moved_forward(tmp_path, caplog):
    """A damaged index gives pts like these; the muxer needs them increasing, as ffmpeg makes them."""
    from vstream.stages.decode import VideoInfo

    info = VideoInfo(64, 48, Fraction(1, 25), Fraction(25), 0, None, "h264")
    given = [0, 1, 2, 2, 1, 5, 6]
    with VideoWriter(tmp_path / "o.mp4", info, EncodeSettings()) as writer:
        for i, pts in enumerate(given):
            writer.write(colour.from_rgb(synthetic_frame(i, 64, 48)), pts)
    _, pts, time_base = read_video(tmp_path / "o.mp4")
    assert [p * time_base for p in pts] == [Fraction(i, 25) for i in range(7)]
    assert "2 frames had out-of-order or repeated timestamps" in caplog.text
