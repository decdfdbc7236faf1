from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vstream.drivers.archive import MANIFEST_NAME, Progress, clean_archive
from vstream.evaluation.bench import bench_archive
from vstream.cli.clean import progress_line
from vstream.config import load_config
from vstream.stages.decode import VideoReader
from vstream.drivers.pipeline import clean_video
from vstream.stages.schedule import ScheduleConfig
from vstream.drivers.split import join, plan, segment_path, warmup_frames
from vstream.stages.stationary import StationaryConfig
from vstream.stages.smooth import SmoothingConfig

from media import audio_packets, make_clip, read_video

FRAMES, KEYINT = 96, 12  # 4 s at 24 fps, a keyframe every 0.5 s: 1 s segments give 4


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("media") / "long.mp4", frames=FRAMES, width=96, height=64, keyint=KEYINT)


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (clean_archive uses a Ray that is already up)."""
    from vstream.drivers.actors import connect_ray

    ray, started = connect_ray(None, 2)
    yield
    if started:
        ray.shutdown()


def config_for(model: Path):
    """Lossless encode, so the comparison sees the cleaner, not the encoder."""
    return load_config("default", {"model": str(model), "max_side": 64, "encode.crf": 0})


def planes(path: Path) -> list[np.ndarray]:
    """The I420 planes that were encoded (RGB would double a one-level difference in chroma)."""
    with VideoReader(path) as reader:
        return [frame.i420 for frame in reader.items(passthrough=False)]


def max_difference(a: Path, b: Path) -> int:
    return max(int(np.abs(x.astype(int) - y).max()) for x, y in zip(planes(a), planes(b), strict=True))


def test_warmup_brings_the_worst_case_error_under_half_a_level():
    every_frame = ScheduleConfig(max_gap=1)
    assert warmup_frames(SmoothingConfig(alpha=0.4), every_frame) == 14
    assert 510 * 0.6**14 < 0.5 < 510 * 0.6**13
    assert warmup_frames(SmoothingConfig(alpha=1.0), every_frame) == 0


def test_warmup_reaches_back_to_a_key_frame_the_whole_file_also_picks():
    assert warmup_frames(SmoothingConfig(alpha=0.4), ScheduleConfig(max_gap=4)) == 14 + 3
    assert warmup_frames(SmoothingConfig(alpha=1.0), ScheduleConfig(max_gap=6)) == 5
    # the stationary layer's evidence: twice its memory (and one gap) of look-behind, when enabled
    on = StationaryConfig(enabled=True, memory=120.0, gap=12)
    assert warmup_frames(SmoothingConfig(alpha=0.4), ScheduleConfig(max_gap=4), on) == 252
    assert warmup_frames(SmoothingConfig(alpha=0.4), ScheduleConfig(max_gap=4), StationaryConfig()) == 14 + 3


def test_progress_line_gives_files_frames_fps_and_eta():
    assert progress_line(Progress(3, 10, 1000, 5000, 20.0)) == "progress: 3/10 files, 1000/5000 frames, 50.0 fps, ETA 1m20s"
    assert progress_line(Progress(0, 2, 10, 360_010, 1.0)).endswith("10.0 fps, ETA 10h00m")
    assert progress_line(Progress(0, 2, 0, 100, 1.0)) == "progress: 0/2 files, 0/100 frames, 0.0 fps"


def test_segments_start_at_keyframes_with_warmup_before(clip):
    with av.open(str(clip)) as container:
        keyframes = {p.pts for p in container.demux(video=0) if p.size and p.is_keyframe}
    spans, frames, seconds = plan(str(clip), 1.0, 14)
    assert frames == FRAMES and seconds == pytest.approx(4.0)
    assert len(spans) == 4 and all(s.start_pts in keyframes for s in spans)
    assert [s.end_pts for s in spans] == [s.start_pts for s in spans[1:]] + [None]
    assert sum(s.frames for s in spans) == FRAMES
    step = spans[0].end_pts // spans[0].frames  # constant frame rate: pts per frame
    assert spans[0].warmup_pts == spans[0].start_pts == 0
    assert all(s.start_pts - s.warmup_pts == 14 * step for s in spans[1:])
    assert all(s.first_index * step == s.warmup_pts for s in spans)  # numbered as in the whole file
    assert plan(str(clip), 0, 14)[0] is None and plan(str(clip), 3.0, 14)[0] is None  # not worth it


def test_four_segments_give_the_frames_timestamps_and_audio_of_one(clip, dimming_model, tmp_path, ray_session):
    config = config_for(dimming_model)
    whole = clean_archive(str(clip), tmp_path / "whole", config, segment_s=0)
    progress = []
    split = clean_archive(str(clip), tmp_path / "split", config, segment_s=1.0, jobs=2, on_progress=progress.append)
    assert whole.done == split.done == 1 and whole.frames == split.frames == FRAMES
    one, four = tmp_path / "whole" / clip.name, tmp_path / "split" / clip.name
    (_, pts_one, tb_one), (frames_four, pts_four, tb_four) = read_video(one), read_video(four)
    assert len(frames_four) == FRAMES and (pts_four, tb_four) == (pts_one, tb_one)
    assert audio_packets(four) == audio_packets(one) == audio_packets(clip) != []
    assert max_difference(one, four) <= 1
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == [MANIFEST_NAME, clip.name]  # segments removed
    assert len(progress) == 1 + 4 + 1  # probe, segments, join
    assert progress[-1].files_done == 1 and progress[-1].frames_done == progress[-1].frames_total == FRAMES


def test_without_warmup_the_segments_would_differ(clip, dimming_model, tmp_path):
    """The check above has teeth: segments that start with a fresh smoother are further off."""
    config = load_config("default", {"model": str(dimming_model), "max_side": 64, "encode.crf": 0, "workers": 0})
    clean_video(str(clip), tmp_path / "one.mp4", config)
    spans, _, _ = plan(str(clip), 1.0, 0)
    parts = [segment_path(tmp_path / "four.mp4", i) for i in range(len(spans))]
    for part, span in zip(parts, spans):
        clean_video(str(clip), part, config, span=span)
    join(str(clip), parts, tmp_path / "four.mp4")
    assert max_difference(tmp_path / "one.mp4", tmp_path / "four.mp4") > 1


def test_killed_driver_rerun_reuses_finished_segments(dimming_model, tmp_path, ray_session):
    source = make_clip(tmp_path / "long.mp4", frames=240, width=192, height=108, keyint=KEYINT)  # 10 segments
    out = tmp_path / "out"
    script = (
        "import sys; from pathlib import Path; from vstream.drivers.archive import clean_archive; "
        "from vstream.config import load_config; "
        f"c = load_config('default', {{'model': {str(dimming_model)!r}, 'max_side': 64, 'encode.crf': 0}}); "
        "clean_archive(sys.argv[1], Path(sys.argv[2]), c, jobs=1, segment_s=1.0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(source), str(out)], start_new_session=True)
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (manifest.is_file() and manifest.read_text().count('"segment"') >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [json.loads(line) for line in manifest.read_text().splitlines()]
    finished = {e["segment"] for e in before if "segment" in e}
    assert 2 <= len(finished) < 10, "the kill should land mid-file"
    assert all(segment_path(out / source.name, i).is_file() for i in finished)
    resumed = clean_archive(str(source), out, config_for(dimming_model), jobs=1, segment_s=1.0)
    assert resumed.done == 1 and resumed.frames == 240 and resumed.footage_s == pytest.approx(10, abs=0.1)
    after = [json.loads(line) for line in manifest.read_text().splitlines()][len(before):]
    redone = {e["segment"] for e in after if "segment" in e}
    assert redone == set(range(10)) - finished  # the finished ones were not cleaned again
    reference = clean_archive(str(source), tmp_path / "ref", config_for(dimming_model), segment_s=0)
    assert reference.frames == 240 and max_difference(out / source.name, tmp_path / "ref" / source.name) <= 1
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, source.name]


def test_archive_bench_times_whole_and_segmented_runs(dimming_model, tmp_path):
    sample = make_clip(tmp_path / "sample.mp4", frames=6, width=64, height=48, audio=False)
    config = load_config("default", {"model": str(dimming_model), "max_side": 64, "encode.preset": "ultrafast"})
    result = bench_archive(sample, 8, [2], config, tmp_path, size="360p")
    assert result.frames == 200 and set(result.split_s) == {1, 2}
    assert result.overhead > 0 and result.scaling[1] == 1.0 and result.scaling[2] > 0
