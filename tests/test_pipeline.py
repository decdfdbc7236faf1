from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vstream.config import load_config
from vstream.errors import OutputError
from vstream.drivers.pipeline import clean_still, clean_video, default_output
from vstream.stagetimes import STAGES

from media import audio_packets, make_clip, read_video, synthetic_frame


def config_for(model: Path, **overrides):
    return load_config("default", {"model": str(model), "max_side": 64, **overrides})


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", frames=30, width=192, height=108)


def test_cardinality_timestamps_and_audio(clip, dimming_model, tmp_path):
    out = tmp_path / "out.mp4"
    report = clean_video(str(clip), out, config_for(dimming_model, workers=0))
    (src, src_pts, src_tb), (dst, dst_pts, dst_tb) = read_video(clip), read_video(out)
    assert report.frames == len(dst) == len(src) == 30
    assert report.footage_s == pytest.approx(30 / 24, abs=0.05)
    assert [p * src_tb for p in src_pts] == [p * dst_tb for p in dst_pts]
    assert audio_packets(clip) == audio_packets(out)
    assert dst[0].shape == src[0].shape
    # The dimming model removes a known layer: the output must be darker, not a copy.
    assert np.mean(dst[10]) < np.mean(src[10]) - 5


def test_identity_model_leaves_footage_unchanged(clip, identity_model, tmp_path):
    out = tmp_path / "out.mp4"
    clean_video(str(clip), out, config_for(identity_model, workers=0))
    src, dst = read_video(clip)[0], read_video(out)[0]
    mse = np.mean([(a.astype(float) - b) ** 2 for a, b in zip(src, dst)])
    assert 10 * np.log10(255**2 / mse) > 38


def test_network_runs_on_key_frames_only_and_stages_are_timed(clip, dimming_model, tmp_path):
    every = clean_video(str(clip), tmp_path / "every.mp4", config_for(dimming_model, workers=0, **{"schedule.max_gap": 1}))
    keyed_config = config_for(dimming_model, workers=0, **{"schedule.max_gap": 4, "schedule.threshold": 1.0})
    keyed = clean_video(str(clip), tmp_path / "keyed.mp4", keyed_config)
    assert every.inferred == 30 and keyed.inferred == 8 and keyed.frames == 30  # frames 0, 4, ..., 28
    src, dst = read_video(clip)[0], read_video(tmp_path / "keyed.mp4")[0]
    assert all(np.mean(b) < np.mean(a) - 5 for a, b in zip(src, dst))  # carried frames are cleaned too
    # every stage but the stationary layer, which is off by default (tests/test_stationary.py)
    assert set(keyed.stage_ms) == set(STAGES) - {"stationary"} and all(ms > 0 for ms in keyed.stage_ms.values())


def test_worker_count_does_not_change_frames(clip, dimming_model, tmp_path):
    """In-process, 1 Ray actor and 3 Ray actors give bit-identical cleaned frames.

    Encoded losslessly: multi-threaded x264 at a lossy CRF was seen here to vary in the last
    bits with thread timing alone (same worker count, identical input frames), which would test
    the encoder, not the pipeline.
    """
    outputs = []
    for workers in (0, 1, 3):
        out = tmp_path / f"w{workers}.mkv"
        config = config_for(dimming_model, workers=workers, max_in_flight=4, **{"encode.crf": 0})
        clean_video(str(clip), out, config)
        outputs.append(read_video(out)[0])
    for other in outputs[1:]:
        assert len(other) == len(outputs[0])
        assert all(np.array_equal(a, b) for a, b in zip(outputs[0], other))


def test_compare_is_side_by_side(clip, dimming_model, tmp_path):
    out = tmp_path / "cmp.mp4"
    clean_video(str(clip), out, config_for(dimming_model, workers=0), compare=True)
    frames = read_video(out)[0]
    assert frames[0].shape == (108, 384, 3)


def test_still_image(dimming_model, tmp_path):
    import cv2

    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), synthetic_frame(2, 300, 200)[..., ::-1])
    report = clean_still(str(src), tmp_path / "photo.clean.png", config_for(dimming_model))
    out = cv2.imread(str(report.output))
    assert out.shape == (200, 300, 3) and report.frames == 1


def test_nothing_written_on_error(clip, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(Exception):
        clean_video(str(clip), out, config_for(tmp_path / "missing.onnx", workers=0))
    assert list(tmp_path.iterdir()) == []


def test_exception_output_is_input(clip, dimming_model):
    with pytest.raises(OutputError, match="same file"):
        clean_video(str(clip), clip, config_for(dimming_model, workers=0))


def test_default_output_names():
    assert default_output("a/dash.mp4") == Path("a/dash.clean.mp4")
    assert default_output("cam.avi") == Path("cam.clean.mkv")
    assert default_output("cam.ts") == Path("cam.clean.ts")  # MPEG-TS holds H.264 and a camera's audio
    assert default_output("p.jpg", compare=True) == Path("p.compare.jpg")


def _start_clean(src: Path, out: Path, model: Path) -> subprocess.Popen:
    """``vstream clean src -o out`` in a subprocess, returned once it writes its first frames."""
    proc = subprocess.Popen(  # -X faulthandler: SIGABRT dumps every thread's stack (see _stderr_after_stop)
        [sys.executable, "-X", "faulthandler", "-m", "vstream", "clean", str(src), "-o", str(out), "--model", str(model),
         "--workers", "0", "--preset", "medium"],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.parent.glob(f".{out.stem}.part-*")):
        time.sleep(0.05)
    return proc


def _stderr_after_stop(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The stderr of a run that was told to stop; one that does not stop in ``timeout`` fails the
    test with every thread's stack (one hung once in a CI run)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        stderr = proc.communicate(timeout=30)[1]
        pytest.fail(f"no exit {timeout:.0f} s after the stop; its threads:\n{stderr[-6000:]}")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("long") / "long.mkv", frames=900, width=320, height=180, audio=False)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_a_playable_partial_file(tmp_path, long_clip, dimming_model, sig):
    out = tmp_path / "out.mkv"
    proc = _start_clean(long_clip, out, dimming_model)
    time.sleep(1.0)
    proc.send_signal(sig)
    stderr = _stderr_after_stop(proc)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mkv"]
    frames, pts, _ = read_video(tmp_path / "out.partial.mkv")
    assert 0 < len(frames) < 900
    assert pts == sorted(pts)


def test_second_signal_still_leaves_a_playable_partial_file(tmp_path, long_clip, dimming_model):
    """Signals in a burst (a second Ctrl-C, or a service manager's SIGTERM after it) land while the
    run drains and finalises: still exit 130 and a playable partial file. An earlier run's
    partial file is not replaced: this one is numbered."""
    earlier = tmp_path / "out.partial.mkv"
    earlier.write_bytes(b"an earlier run's")
    proc = _start_clean(long_clip, tmp_path / "out.mkv", dimming_model)
    time.sleep(1.0)
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGINT):
        proc.send_signal(sig)
        time.sleep(0.1)
    stderr = _stderr_after_stop(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert "written to " + str(tmp_path / "out.partial-2.mkv") in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial-2.mkv", "out.partial.mkv"]
    assert earlier.read_bytes() == b"an earlier run's"
    frames, pts, _ = read_video(tmp_path / "out.partial-2.mkv")
    assert 0 < len(frames) < 900 and pts == sorted(pts)


def test_output_that_appears_meanwhile_is_not_replaced(tmp_path, clip, dimming_model):
    """Two runs to one output: the one that finishes second keeps the other's file, puts its own
    under a numbered name and says so (exit 1). The first run is held (SIGSTOP) mid-file while
    the second runs from start to end."""
    src = make_clip(tmp_path / "long.mkv", frames=300, width=320, height=180, audio=False)
    out = tmp_path / "out.mkv"
    first = _start_clean(src, out, dimming_model)
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "vstream", "clean", str(clip), "-o", str(out), "--model", str(dimming_model),
             "--workers", "0", "-q"], capture_output=True, text=True, timeout=120,
        )
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"Error: {out} appeared while cleaning (another run?) and was left as it is; "
        f"this run's result is {tmp_path / 'out-2.mkv'} (--overwrite replaces)")
    assert len(read_video(out)[0]) == 30 and len(read_video(tmp_path / "out-2.mkv")[0]) == 300


def test_stale_staging_files_of_killed_runs_are_removed(tmp_path, clip, dimming_model):
    """A run killed with SIGKILL leaves its hidden staging file; the next run on the same output
    removes it, but never a running process's, nor another output's."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        left = [tmp_path / f".out.part-{dead.pid}.mp4", tmp_path / f".other.part-{dead.pid}.mp4",
                tmp_path / f".out.part-{alive.pid}.mp4"]
        for path in left:
            path.write_bytes(b"half a video")
        clean_video(str(clip), tmp_path / "out.mp4", config_for(dimming_model, workers=0))
    finally:
        alive.kill()
        alive.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.mp4", left[1].name, left[2].name])


def test_joins_an_existing_multi_node_cluster(clip, dimming_model, tmp_path):
    """--address: actors spread over a 2-node cluster give the same frames as in-process."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        clustered, local = tmp_path / "cluster.mkv", tmp_path / "local.mkv"
        lossless = {"encode.crf": 0}  # see test_worker_count_does_not_change_frames
        clean_video(str(clip), clustered, config_for(dimming_model, workers=2, **lossless), address=cluster.address)
        clean_video(str(clip), local, config_for(dimming_model, workers=0, **lossless))
        assert all(np.array_equal(a, b) for a, b in zip(read_video(clustered)[0], read_video(local)[0]))
    finally:
        cluster.shutdown()
