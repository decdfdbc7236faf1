from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vstream.drivers.archive import Manifest, clean_archive, expand, output_for
from vstream.config import load_config
from vstream.errors import InputOpenError

from media import make_clip, read_video, synthetic_frame, truncated_faststart


@pytest.fixture
def footage(tmp_path) -> Path:
    root = tmp_path / "footage"
    (root / "day1").mkdir(parents=True)
    (root / "day2").mkdir()
    make_clip(root / "day1" / "a.mp4", frames=10, width=96, height=64)
    make_clip(root / "day1" / "b.mkv", frames=8, width=96, height=64, audio=False)
    make_clip(root / "day2" / "c.mp4", frames=12, width=96, height=64)
    (root / "day2" / "notes.txt").write_text("not footage")
    return root


def test_expand_folder_glob_and_list(footage, tmp_path):
    root, videos, others = expand(str(footage))
    assert root == footage and [p.name for p in videos] == ["a.mp4", "b.mkv", "c.mp4"]
    assert [p.name for p in others] == ["notes.txt"]
    _, globbed, _ = expand(str(footage / "**" / "*.mp4"))
    assert [p.name for p in globbed] == ["a.mp4", "c.mp4"]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# wanted\n{footage / 'day2' / 'c.mp4'}\n")
    _, listed, _ = expand(f"@{listing}")
    assert [p.name for p in listed] == ["c.mp4"]
    assert output_for(footage / "day1" / "a.mp4", footage, tmp_path / "out", ".clean") == tmp_path / "out" / "day1" / "a.clean.mp4"


def test_exception_bad_specs(tmp_path):
    with pytest.raises(InputOpenError, match="list file not found"):
        expand(f"@{tmp_path / 'missing.txt'}")
    listing = tmp_path / "list.txt"
    listing.write_text(str(tmp_path / "gone.mp4"))
    with pytest.raises(InputOpenError, match="listed input not found"):
        expand(f"@{listing}")


def test_archive_mirrors_tree_records_failures_and_resumes(footage, tmp_path, dimming_model):
    (footage / "day2" / "broken.mp4").write_bytes(b"corrupt")
    out = tmp_path / "out"
    config = load_config("default", {"model": str(dimming_model), "max_side": 64})
    report = clean_archive(str(footage), out, config, jobs=2)
    assert report.done == 3 and report.skipped_other == [str(footage / "day2" / "notes.txt")] and report.exit_code == 123
    assert report.footage_s == pytest.approx((10 + 8 + 12) / 24, abs=0.15)
    assert list(report.failed) == [str((footage / "day2" / "broken.mp4").resolve())]
    assert len(read_video(out / "day1" / "a.mp4")[0]) == 10
    assert len(read_video(out / "day2" / "c.mp4")[0]) == 12
    again = clean_archive(str(footage), out, config, jobs=2)
    assert again.done == 0 and again.skipped_done == 3 and len(again.failed) == 1
    states = {Path(k).name: v["state"] for k, v in Manifest(out).entries.items()}
    assert states == {"a.mp4": "done", "b.mkv": "done", "c.mp4": "done", "broken.mp4": "failed"}


def test_driver_killed_mid_run_then_resumed_gives_the_uninterrupted_outputs(tmp_path, dimming_model):
    root = tmp_path / "footage"
    root.mkdir()
    for i in range(6):
        make_clip(root / f"clip{i}.mp4", frames=90, width=192, height=108)
    script = (
        "import sys; from pathlib import Path; from vstream.drivers.archive import clean_archive; "
        "from vstream.config import load_config; "
        f"c = load_config('default', {{'model': {str(dimming_model)!r}, 'max_side': 64, 'encode.preset': 'medium', 'encode.crf': 0}}); "
        "clean_archive(sys.argv[1], Path(sys.argv[2]), c, jobs=1)"
    )
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([sys.executable, "-c", script, str(root), str(killed)], start_new_session=True)
    manifest = killed / ".vstream-manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (manifest.is_file() and manifest.read_text().count("\n") >= 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = manifest.read_text().count("\n")
    assert 2 <= finished < 6, "the kill should land mid-run"
    config = load_config("default", {"model": str(dimming_model), "max_side": 64, "encode.preset": "medium", "encode.crf": 0})
    resumed = clean_archive(str(root), killed, config, jobs=1)
    assert resumed.skipped_done >= 2 and resumed.done + resumed.skipped_done == 6
    clean_archive(str(root), clean, config, jobs=1)
    names = sorted(p.name for p in killed.iterdir())
    assert names == sorted(p.name for p in clean.iterdir())  # no stale partial files
    for i in range(6):
        a, b = read_video(killed / f"clip{i}.mp4")[0], read_video(clean / f"clip{i}.mp4")[0]
        assert len(a) == len(b) == 90 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_archive_on_a_multi_node_cluster(footage, tmp_path, dimming_model):
    """--address: a folder cleaned by tasks spread over a 2-node cluster on this machine."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        config = load_config("default", {"model": str(dimming_model), "max_side": 64})
        report = clean_archive(str(footage), tmp_path / "out", config, address=cluster.address, jobs=2)
    finally:
        cluster.shutdown()
    assert report.done == 3 and not report.failed
    assert [len(read_video(tmp_path / "out" / name)[0]) for name in ("day1/a.mp4", "day1/b.mkv", "day2/c.mp4")] == [10, 8, 12]


def _ray_workers_running_tasks() -> list[int]:
    """PIDs of Ray worker processes busy with an archive task (Ray retitles them ``ray::_task``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_task"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_worker_killed_mid_file_is_retried_and_nothing_is_lost(tmp_path, dimming_model):
    import threading

    root = tmp_path / "footage"
    root.mkdir()
    make_clip(root / "long.mp4", frames=240, width=192, height=108)
    config = load_config("default", {"model": str(dimming_model), "max_side": 64, "encode.preset": "medium", "encode.crf": 0})
    out, killed = tmp_path / "out", []

    def kill_the_worker_once_it_writes() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if list(out.glob(".long.part-*")):  # cleaning has started: the staging file exists
                for pid in _ray_workers_running_tasks():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_the_worker_once_it_writes)
    watcher.start()
    report = clean_archive(str(root), out, config, jobs=1, segment_s=0)
    watcher.join()
    assert killed, "the kill should land mid-file"
    assert report.done == 1 and not report.failed
    assert sorted(p.name for p in out.iterdir()) == [".vstream-manifest.jsonl", "long.mp4"]  # no staging left
    reference = clean_archive(str(root), tmp_path / "reference", config, jobs=1, segment_s=0)
    assert reference.done == 1
    a, b = read_video(out / "long.mp4")[0], read_video(tmp_path / "reference" / "long.mp4")[0]
    assert len(a) == len(b) == 240 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_manifest_line_cut_short_by_a_crash_does_not_swallow_the_next(tmp_path):
    (tmp_path / ".vstream-manifest.jsonl").write_text('{"input": "/a.mp4", "state": "done"}\n{"input": "/b.mp4", "sta')
    Manifest(tmp_path).record(Path("/c.mp4"), "done", frames=1)
    assert sorted(Manifest(tmp_path).entries) == ["/a.mp4", "/c.mp4"]


def test_signals_stop_an_archive_keeping_what_finished(tmp_path, dimming_model):
    """Ctrl-C then more signals in a burst: no new file is started, the running one is cancelled
    (hurried), what finished is kept and recorded, no staging file is left, exit 130."""
    root = tmp_path / "footage"
    root.mkdir()
    for i in range(3):
        make_clip(root / f"clip{i}.mp4", frames=90, width=192, height=108, audio=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vstream", "clean", str(root), "-o", str(out), "--model", str(dimming_model),
               "--max-side", "64", "--jobs", "1", "--segment-seconds", "0", "--preset", "medium", "--crf", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    manifest = out / ".vstream-manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (manifest.is_file() and manifest.read_text().count("\n") >= 1):
        time.sleep(0.1)
    for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
        proc.send_signal(sig)
        time.sleep(0.1)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted (the same command resumes)" in stderr and "Traceback" not in stderr
    done = [Path(k) for k, v in Manifest(out).entries.items() if v["state"] == "done"]
    assert 1 <= len(done) < 3
    left = sorted(p.name for p in out.iterdir())
    assert {".vstream-manifest.jsonl", *(p.name for p in done)} <= set(left)
    # No staging file; a visible one is complete (one finished as it was cancelled, not yet recorded).
    assert all(len(read_video(out / name)[0]) == 90 for name in left if not name.startswith(".")), left
    assert [name for name in left if name.startswith(".")] == [".vstream-manifest.jsonl"], left


def test_archive_tasks_take_the_selection(tmp_path, dimming_model):
    """-ss/-t/-an reach the tasks that probe and clean each file (they run on Ray; called here directly)."""
    from vstream.drivers.archive import _clean, _probe
    from vstream.stages.decode import Selection

    clip = make_clip(tmp_path / "a.mp4", frames=48, width=96, height=64)  # 2 s
    selection = Selection(start_s=0.5, duration_s=1.0, audio=False)
    assert _probe(str(clip), 0, 14, selection)["frames"] == 24
    config = load_config("default", {"model": str(dimming_model), "workers": 0, "max_side": 64})
    result = _clean(str(clip), str(tmp_path / "out.mp4"), config, None, selection)
    assert result["frames"] == 24
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert [s.type for s in out.streams] == ["video"]


def test_join_without_audio(tmp_path, dimming_model):
    from vstream.drivers.split import join

    clip = make_clip(tmp_path / "a.mp4", frames=12, width=96, height=64)
    join(str(clip), [clip], tmp_path / "joined.mp4", audio=False)
    with av.open(str(tmp_path / "joined.mp4")) as out:
        assert [s.type for s in out.streams] == ["video"]


# Issue 33, point 5: archives take what a single file takes, and say what happened to each file.

def _write_gif(path: Path, frames: int) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb8"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(i, 64, 48), format="rgb24").reformat(format="rgb8")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def mixed_footage(tmp_path) -> Path:
    """What single-file mode cleans, in the containers people have (and a few things it cannot)."""
    root = tmp_path / "footage"
    root.mkdir()
    make_clip(root / "cam.webm", frames=12, width=64, height=48, audio=False, codec="libvpx-vp9")
    make_clip(root / "tape.ogv", frames=8, width=64, height=48, audio=False, codec="libvpx")
    make_clip(root / "tape.vob", frames=9, width=64, height=48, audio=False, codec="mpeg2video", fps=25)
    make_clip(root / "studio.mxf", frames=10, width=64, height=48, audio=False, codec="mpeg2video", fps=25)
    make_clip(root / "odd.mkv", frames=6, width=65, height=49, audio=False, codec="ffv1")
    truncated_faststart(make_clip(tmp_path / "whole.mp4", frames=40, audio=False), root / "cut.mp4", 0.6)
    _write_gif(root / "loop.gif", 7)
    cv2.imwrite(str(root / "still.png"), synthetic_frame(0, 64, 48))
    (root / "notes.txt").write_text("not footage")
    (root / "broken.mp4").write_bytes(b"corrupt")
    return root


def test_an_archive_cleans_what_a_single_file_cleans_and_says_what_happened(mixed_footage, tmp_path, dimming_model):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "vstream", "clean", str(mixed_footage), "-o", str(out), "--model",
                           str(dimming_model), "--max-side", "64", "--jobs", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 123, proc.stderr
    frames = {p.name: len(read_video(p)[0]) for p in out.iterdir() if not p.name.startswith(".")}
    decoded = frames.pop("cut.mp4")
    assert frames == {"cam.mkv": 12, "tape.ogv.mkv": 8, "tape.vob.mkv": 9, "studio.mkv": 10, "odd.mkv": 6,
                      "loop.mkv": 7, "still.png": 1}
    said = proc.stderr.splitlines()
    assert f"warning: {mixed_footage / 'odd.mkv'}: libx264 cannot encode yuv420p at 65x49: writing 66x50" in proc.stderr
    assert f"warning: {mixed_footage / 'cut.mp4'} ended early: {decoded} of the 40 frames" in proc.stderr
    assert f"skipped: {mixed_footage / 'notes.txt'} (not a video or an image)" in said
    assert (f"error: cannot clean {mixed_footage / 'broken.mp4'}: cannot open {mixed_footage / 'broken.mp4'}: "
            "Invalid data found when processing input") in said
    assert "\x1b" not in (out / ".vstream-manifest.jsonl").read_text() and "\x1b" not in proc.stderr
    assert not any(line.startswith("Traceback") for line in said)


def test_an_unforeseen_error_in_a_task_is_stored_in_its_own_words():
    """Not Ray's ``ray::_task()`` line, coloured, which is all the manifest used to keep."""
    import ray.exceptions

    from vstream.drivers.archive import _reason, _task

    def broken(_: str) -> dict:
        raise ValueError("Only VP8 or VP9 or AV1 video are supported for WebM")

    assert _task(broken, "x") == {"state": "failed", "warnings": [],
                                  "error": "ValueError: Only VP8 or VP9 or AV1 video are supported for WebM"}
    wrapped = ray.exceptions.RayTaskError("\x1b[36m_task\x1b[39m", "Traceback ...", KeyError("spans"))
    assert _reason(wrapped) == "KeyError: 'spans'"
    assert _reason(ray.exceptions.WorkerCrashedError()).startswith("WorkerCrashedError: ")
    assert "\x1b" not in _reason(ray.exceptions.WorkerCrashedError())
