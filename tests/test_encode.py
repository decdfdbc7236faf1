from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vstream import colour
from vstream.decode import VideoReader
from vstream.encode import EncodeSettings, VideoWriter
from vstream.errors import ConfigError
from vstream.frame import Frame

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
    from vstream.decode import VideoInfo

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
