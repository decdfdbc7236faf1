"""Live feeds against real servers on loopback: GStreamer's rtsp-server as a camera (vstream pulls)
and FFmpeg's RTSP listen mode (vstream pushes). Skipped with a reason where the server is missing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vstream.drivers.actors import LocalRunner
from vstream.config import load_config
from vstream.stages.frame import Frame
from vstream.drivers.live import LiveOptions, LiveSource, LiveStats, is_live
from vstream.drivers.pipeline import CleanStages, Discontinuity
from vstream.stages.smooth import ResidualSmoother

from media import make_clip, read_video

SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA = Path(__file__).with_name("rtsp_camera.py")


def _gst_rtsp_server_missing() -> str | None:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        subprocess.run([SYSTEM_PYTHON, "-c", probe], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return (f"GStreamer's RTSP server is not importable from {SYSTEM_PYTHON} "
                "(apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good)")
    return None


needs_camera = pytest.mark.skipif(bool(reason := _gst_rtsp_server_missing()), reason=reason or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    """The RTSP camera subprocess: rtsp://127.0.0.1:PORT/cam serves ``clip`` to every client."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip, self.port = clip, port or free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Camera:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(CAMERA), str(self.clip), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()
        return self

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def camera(tmp_path_factory):
    cameras = []
    clips = tmp_path_factory.mktemp("camera")

    def start(frames: int = 90, port: int | None = None) -> Camera:
        clip = clips / f"camera-{frames}.mp4"
        if not clip.exists():
            make_clip(clip, frames=frames, width=320, height=180, fps=30, audio=False)
        cameras.append(Camera(clip, port).start())
        return cameras[-1]

    yield start
    for cam in cameras:
        if cam.proc.poll() is None:
            cam.kill()


def vstream(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vstream", "clean", *args], stderr=subprocess.PIPE,
                            text=True, **popen)


def model_args(model: Path) -> list[str]:
    return ["--model", str(model), "--max-side", "64", "--workers", "0"]


def pts_seconds(path: Path) -> list[float]:
    _, pts, time_base = read_video(path)
    return [float(p * time_base) for p in pts]


@needs_camera
@pytest.mark.parametrize("stage_args", [[], ["--stationary"]], ids=["default", "stationary"])
def test_cardinality_rtsp_camera(camera, dimming_model, tmp_path, stage_args):
    """N frames in, N frames out, one segment, 30 fps timestamps; credentials never shown. The
    stationary layer, causal in a live feed, changes none of that."""
    cam = camera(frames=90)
    url = cam.url.replace("rtsp://", "rtsp://user:secret@")
    # --max-wait 2: the server sends its first second in one burst; this test is about counting.
    (tmp_path / "rec").mkdir()
    proc = vstream(url, "-o", str(tmp_path / "rec" / "cam.mkv"), "--max-retries", "0", "--max-wait", "2",
                   *model_args(dimming_model), *stage_args)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "90 frames in, 90 out, 0 dropped" in stderr and "secret" not in stderr
    [segment] = (tmp_path / "rec").iterdir()
    assert segment.name.startswith("cam-") and segment.suffix == ".mkv"
    times = pts_seconds(segment)
    assert len(times) == 90
    assert np.allclose(np.diff(times), 1 / 30, atol=0.002)
    # The dimming model removes a known layer: cleaned, not copied.
    assert np.mean(read_video(segment)[0][45]) < np.mean(read_video(cam.clip)[0][45]) - 5


@needs_camera
def test_reconnects_after_server_restart(camera, dimming_model, tmp_path):
    """Server killed and restarted mid-stream: vstream logs the gap, reconnects, and the MPEG-TS on
    stdout goes on with increasing timestamps that jump over the outage."""
    cam = camera(frames=600)
    out = tmp_path / "out.ts"
    with out.open("wb") as stdout:
        proc = vstream(cam.url, "-o", "-", "--read-timeout", "2", "--max-wait", "2", *model_args(dimming_model),
                       stdout=stdout)
        lines = _lines(proc)
        assert _wait_until(lambda: out.stat().st_size > 0), lines
        time.sleep(2)
        cam.kill()
        assert _wait_for(lines, "reconnect attempt 1"), lines
        time.sleep(1.5)
        camera(frames=600, port=cam.port)
        assert _wait_for(lines, "reconnected to"), lines
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, lines
    assert any("stopped:" in line and "1 reconnects" in line for line in lines), lines
    times = pts_seconds(out)
    steps = np.diff(times)
    assert len(times) > 60 and (steps > 0).all()
    assert steps.max() > 1.4  # the outage, kept at its wall-clock length


@needs_camera
def test_stalled_camera_times_out_and_reconnects(camera, dimming_model, tmp_path):
    """A camera that goes silent mid-stream (its process stopped): read timeout, said so, retried;
    once it answers again vstream reconnects and a new segment starts after the gap."""
    cam = camera(frames=600)
    proc = vstream(cam.url, "-o", str(tmp_path / "cam.mkv"), "--read-timeout", "1", "--max-wait", "2",
                   *model_args(dimming_model))
    lines = _lines(proc)
    assert _wait_until(lambda: any(tmp_path.iterdir())), lines
    time.sleep(1)
    cam.proc.send_signal(signal.SIGSTOP)
    try:
        assert _wait_for(lines, "timed out: nothing received for 1 s"), lines
    finally:
        cam.proc.send_signal(signal.SIGCONT)
    assert _wait_for(lines, "reconnected to"), lines
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, lines
    segments = sorted(tmp_path.iterdir())
    assert len(segments) == 2 and all(len(pts_seconds(s)) > 10 for s in segments), segments


def test_silent_server_times_out_retries_and_gives_up(dimming_model, tmp_path):
    """A server that accepts and sends nothing: open timeout, a logged retry each time, one clear
    error line, exit 1, no traceback and no password."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        held = []
        threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(3)], daemon=True).start()
        url = f"rtsp://user:secret@127.0.0.1:{server.getsockname()[1]}/cam"
        proc = vstream(url, "-o", str(tmp_path / "cam.mkv"), "--open-timeout", "1", "--max-retries", "2",
                       *model_args(dimming_model))
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert stderr.count("timed out: no answer within 1 s") >= 3
    assert "reconnect attempt 1" in stderr and "reconnect attempt 2" in stderr
    assert "Error: gave up on rtsp://***@127.0.0.1" in stderr and "after 2 retries" in stderr
    assert "Traceback" not in stderr and "secret" not in stderr
    assert list(tmp_path.iterdir()) == []


@needs_camera
def test_sigterm_leaves_a_playable_segment(camera, dimming_model, tmp_path):
    """SIGTERM: stop reading, drain, finalise the open segment; no staging file left behind;
    exit 0; every frame in is out, dropped or counted as in flight at the stop."""
    cam = camera(frames=600)
    proc = vstream(cam.url, "-o", str(tmp_path / "cam.mp4"), *model_args(dimming_model))
    lines = _lines(proc)
    assert _wait_until(lambda: any(tmp_path.iterdir())), lines  # the open segment's staging file
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0, lines
    [segment] = tmp_path.iterdir()
    assert segment.name.startswith("cam-") and segment.suffix == ".mp4"
    times = pts_seconds(segment)
    assert 30 < len(times) < 600 and times == sorted(times)
    frames_in, out, dropped, in_flight = _accounting(lines)
    assert frames_in == out + dropped + in_flight and out == len(times)


def _accounting(lines: list[str]) -> tuple[int, int, int, int]:
    """(in, out, dropped, in flight) from a stopped run's summary line."""
    [summary] = [line for line in lines if line.startswith("stopped:")]
    match = re.search(r"(\d+) frames in, (\d+) out, (\d+) dropped, (\d+) in flight at the stop", summary)
    assert match, summary
    return tuple(int(n) for n in match.groups())


def _feed(data: bytes, seconds: float = 0.0) -> tuple[int, threading.Thread, int]:
    """A pipe for a live run's stdin, written from a thread and kept open: (read end, writer
    thread, write end; closing it ends the input). ``seconds`` > 0 paces the writes like a
    camera's (a tenth of a second's worth at a time) instead of one burst."""
    read, write = os.pipe()
    chunks = max(1, round(seconds * 10))
    step = -(-len(data) // chunks)

    def writer() -> None:
        try:
            for start in range(0, len(data), step):
                os.write(write, data[start:start + step])
                time.sleep(seconds / chunks)
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return read, thread, write


def _live_from_stdin(clip: Path, out: Path, model: Path, seconds: float = 0.0):
    """``vstream clean - --live -o out/cam.mp4`` fed ``clip`` through a pipe over ``seconds`` (0: one
    burst): (process, feeding thread, write end)."""
    out.mkdir()
    read, writer, write = _feed(clip.read_bytes(), seconds)
    proc = vstream("-", "--live", "-o", str(out / "cam.mp4"), "--max-wait", "60", "--read-timeout", "60",
                   *model_args(model), stdin=read)
    os.close(read)
    return proc, writer, write


def test_second_signal_still_finalises_the_segment(dimming_model, tmp_path):
    """Signals in a burst while a live run drains and finalises: exit 0 as for one signal, the
    segment playable under its name, every frame accounted for."""
    clip = make_clip(tmp_path / "in.ts", frames=300, width=320, height=180, fps=30, audio=False)
    out = tmp_path / "out"
    proc, writer, write = _live_from_stdin(clip, out, dimming_model)
    lines = _lines(proc)
    try:
        assert _wait_until(lambda: any(out.iterdir()), timeout=60), lines
        time.sleep(0.5)
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            proc.send_signal(sig)
            time.sleep(0.1)
    finally:
        writer.join(timeout=60)
        os.close(write)  # end of input, so that the reader lets go
    proc.wait(timeout=60)
    assert proc.returncode == 0, lines
    assert not any("Traceback" in line or "Aborted" in line for line in lines), lines
    [segment] = out.iterdir()
    assert segment.name.startswith("cam-") and segment.suffix == ".mp4"
    frames_in, written, dropped, in_flight = _accounting(lines)
    assert frames_in == written + dropped + in_flight and written == len(pts_seconds(segment)) > 0


def test_sigkill_leaves_the_open_segment_playable(dimming_model, tmp_path):
    """kill -9 mid-segment: the open MP4 segment (fragmented) plays up to about its last second;
    the next run on the same output gives it its visible name. The clip comes at a camera's pace:
    a burst would overflow the live queue, which drops the oldest frames."""
    clip = make_clip(tmp_path / "in.ts", frames=150, width=160, height=96, fps=30, audio=False)
    out = tmp_path / "out"
    proc, writer, write = _live_from_stdin(clip, out, dimming_model, seconds=5.0)

    def open_segment_frames() -> int:
        staging = list(out.glob(".cam-*.part-*.mp4"))
        try:
            return len(read_video(staging[0])[0]) if staging else 0
        except (av.FFmpegError, IndexError):  # not playable (yet)
            return 0

    try:
        assert _wait_until(lambda: open_segment_frames() >= 60, timeout=60), "the open segment never played"
    finally:
        proc.kill()
        proc.wait()
        writer.join(timeout=60)  # its next write fails on the dead reader
        os.close(write)
    assert len(list(out.iterdir())) == 1 and open_segment_frames() >= 60
    with make_clip(tmp_path / "next.ts", frames=30, width=160, height=96, fps=30, audio=False).open("rb") as stdin:
        proc = vstream("-", "--live", "-o", str(out / "cam.mp4"), "--max-wait", "60", *model_args(dimming_model),
                       stdin=stdin)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    segments = sorted(out.iterdir())
    assert len(segments) == 2 and not any(p.name.startswith(".") for p in segments)
    assert sorted(len(read_video(p)[0]) for p in segments)[0] == 30
    assert sum(len(read_video(p)[0]) >= 60 for p in segments) == 1


@needs_camera
def test_push_to_rtsp_server_in_listen_mode(camera, dimming_model):
    """-o rtsp://…: vstream publishes to a server (FFmpeg's RTSP listen mode) that receives every frame."""
    cam = camera(frames=60)
    push_url = f"rtsp://127.0.0.1:{free_port()}/clean"
    received: list[int] = []

    def listen() -> None:
        with av.open(push_url, options={"rtsp_flags": "listen", "listen_timeout": "30"}) as container:
            for frame in container.decode(video=0):
                received.append(frame.width)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    proc = vstream(cam.url, "-o", push_url, "--max-retries", "0", "--max-wait", "2", *model_args(dimming_model))
    _, stderr = proc.communicate(timeout=60)
    listener.join(timeout=30)
    assert proc.returncode == 0, stderr
    assert "60 frames in, 60 out" in stderr
    assert len(received) == 60 and set(received) == {320}


def test_listen_for_a_publisher(dimming_model, tmp_path):
    """--listen: vstream is the RTSP server (FFmpeg's listen mode) and a publisher pushes to it."""
    clip = make_clip(tmp_path / "clip.mp4", frames=45, width=160, height=96, fps=30, audio=False)
    url = f"rtsp://127.0.0.1:{free_port()}/in"
    (tmp_path / "out").mkdir()
    proc = vstream(url, "--listen", "-o", str(tmp_path / "out" / "cam.mkv"), "--max-retries", "0",
                   "--max-wait", "60", *model_args(dimming_model))
    _wait_until(lambda: _publish(clip, url), timeout=60)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    [segment] = (tmp_path / "out").iterdir()
    assert len(pts_seconds(segment)) == 45 and "45 frames in, 45 out" in stderr


def _publish(clip: Path, url: str) -> bool:
    """Push ``clip``'s H.264 packets to ``url`` in real time; False if nothing listens there yet."""
    with av.open(str(clip)) as source, av.open(url, "w", format="rtsp", options={"rtsp_transport": "tcp"}) as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        start = time.monotonic()
        for packet in source.demux(video=0):
            if packet.size:
                time.sleep(max(0.0, float(packet.pts * packet.time_base) - (time.monotonic() - start)))
                packet.stream = stream
                try:
                    target.mux(packet)  # the first one connects
                except ConnectionRefusedError:
                    return False
    return True


def test_stdin_to_segments(dimming_model, tmp_path):
    """``- --live`` reads a camera's stream on stdin; its end is the end of the input (no reconnecting)."""
    clip = make_clip(tmp_path / "in.ts", frames=30, width=160, height=96, fps=30, audio=False)
    (tmp_path / "out").mkdir()
    with clip.open("rb") as stdin:
        proc = vstream("-", "--live", "-o", str(tmp_path / "out" / "cam.mkv"), "--max-wait", "60",
                       *model_args(dimming_model), stdin=stdin)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    [segment] = (tmp_path / "out").iterdir()
    assert len(pts_seconds(segment)) == 30 and "input ended: 30 frames in, 30 out" in stderr


def test_odd_sized_feed_is_padded_with_a_warning(dimming_model, tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", frames=10, width=161, height=97, fps=30, audio=False, codec="ffv1")
    (tmp_path / "out").mkdir()
    with clip.open("rb") as stdin:
        proc = vstream("-", "--live", "-o", str(tmp_path / "out" / "cam.mkv"), "--max-wait", "60",
                       *model_args(dimming_model), stdin=stdin)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "the feed stdin is 161x97: the live output is 162x98, its last column/row repeated" in stderr
    [segment] = (tmp_path / "out").iterdir()
    frames, _, _ = read_video(segment)
    assert len(frames) == 10 and frames[0].shape[:2] == (98, 162)


def test_drop_policy_drops_oldest_stale_frames():
    """Frames that waited past max_wait are dropped oldest first, counted; the newest is kept,
    and discontinuity markers are never dropped."""
    stats = LiveStats()
    source = LiveSource("rtsp://cam/x", LiveOptions(max_wait_s=0.05), stats)
    frames = [Frame(i, i, Fraction(1, 30), np.zeros((6, 4), np.uint8)) for i in range(5)]
    for frame in frames[:3]:
        source._put(frame)
    source._put(Discontinuity(1.0))
    time.sleep(0.1)
    source._put(frames[3])
    source._put(frames[4])
    source._put(None)
    got = list(source)
    assert [getattr(item, "index", "gap") for item in got] == [2, "gap", 3, 4]
    assert stats.dropped == 2 and stats.frames_in == 5


def test_discontinuity_finishes_frames_in_flight_then_restarts_smoothing(dimming_model):
    config = load_config("default", {"model": str(dimming_model), "max_side": 64, "stationary.enabled": True})
    resets = []

    class Smoother(ResidualSmoother):
        def reset(self) -> None:
            resets.append(len(emitted))
            super().reset()

    frames = [Frame(i, i, Fraction(1, 30), np.full((144, 160), 100, np.uint8)) for i in range(4)]
    emitted: list = []
    runner = LocalRunner(config.model_path(), 1, ["CPUExecutionProvider"])
    try:
        stages = CleanStages(runner, Smoother(config.temporal), config)
        stages.run([*frames[:3], Discontinuity(2.0), frames[3]], emitted.append, max_in_flight=8)
    finally:
        runner.close()
    assert [getattr(item, "index", "gap") for item in emitted] == [0, 1, 2, "gap", 3]
    assert resets == [3]  # after the three frames before the gap were finished
    assert stages.schedule.keys == 2  # the network ran on the first frame and on the first after the gap
    assert stages.stationary.epoch == 1  # the stationary layer started again too


def test_rebased_timestamps_increase_across_reconnects():
    source = LiveSource("rtsp://cam/x", LiveOptions(), LiveStats())
    source._step = 3000
    tb = Fraction(1, 90000)
    out = [source._rebased(Frame(0, p, tb, np.zeros((6, 4), np.uint8))).pts for p in (None, 3000, 6000)]
    source._offset = None  # a new connection: the camera's clock starts again
    out += [source._rebased(Frame(0, p, tb, np.zeros((6, 4), np.uint8))).pts for p in (0, 3000, 3000)]
    assert out[:3] == [0, 3000, 6000] and out[3] == 9000
    assert all(b > a for a, b in zip(out, out[1:]))


def test_is_live():
    assert is_live("rtsp://cam/x") and is_live("RTMP://cam/x")
    assert not is_live("-") and not is_live("clip.mp4") and not is_live("https://host/clip.mp4")


def _lines(proc: subprocess.Popen) -> list[str]:
    """Collect ``proc``'s stderr lines on a thread (the list fills as they come)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    return lines


def _wait_for(lines: list[str], text: str) -> bool:
    return _wait_until(lambda: any(text in line for line in lines))


def _wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
