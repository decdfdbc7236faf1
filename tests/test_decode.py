from __future__ import annotations

from fractions import Fraction

import av
import pytest

from vstream.stages.decode import VideoReader, read_image
from vstream.errors import DecodeError, InputOpenError
from vstream.stages.frame import Frame

from media import make_clip


def test_cardinality_frames_pts_and_packets(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=20)
    with VideoReader(clip) as reader:
        items = list(reader.items())
        info = reader.info
        packets = [i for i in items if isinstance(i, av.Packet)]
        assert packets and all(p.stream.type == "audio" for p in packets)  # while the input is open
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.index for f in frames] == list(range(20))
    assert [f.pts * f.time_base for f in frames] == [Fraction(i, 24) for i in range(20)]
    assert frames[0].size == (96, 160) and frames[0].i420.shape == (144, 160)
    assert (info.width, info.height, info.frames) == (160, 96, 20)


def test_rotation_is_read(tmp_path):
    clip = make_clip(tmp_path / "rot.mp4", frames=3, rotation=90, audio=False)
    with VideoReader(clip) as reader:
        list(reader.items())
        assert reader.rotation == 90


def test_truncated_stream_keeps_what_decodes(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=40, audio=False)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with VideoReader(cut) as reader:
        frames = [i for i in reader.items() if isinstance(i, Frame)]
    assert 5 < len(frames) < 40


@pytest.mark.parametrize("content", [b"", b"hello, not a video"])
def test_exception_not_a_video(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(InputOpenError, match="cannot open"):
        VideoReader(path)


def test_exception_missing(tmp_path):
    with pytest.raises(InputOpenError, match="input not found"):
        VideoReader(tmp_path / "nope.mp4")


def test_exception_audio_only(tmp_path):
    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000)
        import numpy as np

        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with pytest.raises(InputOpenError, match="no video stream"):
        VideoReader(path)


def test_exception_no_decodable_frames(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=10, audio=False)
    data = bytearray(clip.read_bytes())
    cut = tmp_path / "headeronly.mkv"
    cut.write_bytes(bytes(data[:600]))
    with pytest.raises((DecodeError, InputOpenError)):
        with VideoReader(cut) as reader:
            list(reader.items())


def test_read_image_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(InputOpenError, match="not a readable image"):
        read_image(bad)


def test_truncated_file_warns_frames_announced_and_decoded(tmp_path, caplog):
    """With its index first, a cut MP4 still announces every frame; ending early is said, not hidden."""
    from media import truncated_faststart

    clip = make_clip(tmp_path / "in.mp4", frames=40, audio=False)
    cut = truncated_faststart(clip, tmp_path / "cut.mp4", keep=0.6)
    with VideoReader(cut) as reader:
        frames = [i for i in reader.items() if isinstance(i, Frame)]
    assert 5 < len(frames) < 40
    assert f"cut.mp4 ended early: {len(frames)} of the 40 frames its container announces were decoded" in caplog.text
    caplog.clear()
    with VideoReader(clip) as reader:
        list(reader.items())
    assert caplog.text == ""


def test_selection_trims_rebases_and_drops_audio(tmp_path):
    from vstream.stages.decode import Selection

    clip = make_clip(tmp_path / "in.mp4", frames=48)  # 2 s at 24 fps
    with VideoReader(clip) as reader:
        items = list(reader.selected(Selection(start_s=0.5, duration_s=1.0)))
        audio = [(float(p.pts * p.time_base), p.stream.type) for p in items if isinstance(p, av.Packet)]
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.pts * f.time_base for f in frames] == [Fraction(i, 24) for i in range(24)]
    assert audio and all(0 <= t < 1.0 and kind == "audio" for t, kind in audio)
    with VideoReader(clip, audio=False) as reader:
        assert reader.copy_streams == []
        assert not any(isinstance(i, av.Packet) for i in reader.selected(Selection(duration_s=0.5)))


def test_exception_selection_past_the_end(tmp_path):
    from vstream.stages.decode import Selection

    clip = make_clip(tmp_path / "in.mp4", frames=24, audio=False)
    with pytest.raises(DecodeError, match=r"start 5 s is past the end of .*in.mp4 \(1.00 s\)"):
        with VideoReader(clip) as reader:
            list(reader.selected(Selection(start_s=5)))
