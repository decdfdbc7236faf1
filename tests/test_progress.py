from __future__ import annotations

import json
import os

import pytest

from vstream.cli import common, progress
from vstream.cli.common import FrameProgress
from vstream.cli.progress import ProgressStream
from vstream.errors import OutputError


def run(bar: FrameProgress, frames: int) -> None:
    bar.start(frames)
    for _ in range(frames):
        bar.advance(1)
    bar.close()


def test_plain_lines_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    """A log or CI gets whole lines, not carriage-return bars."""
    monkeypatch.setattr(common, "PLAIN_EVERY_S", 0.0)
    run(FrameProgress(False, "cleaning"), 3)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["cleaning: 1/3 frames", "cleaning: 2/3 frames", "cleaning: 3/3 frames"]
    assert "fps" in lines[0] and "ETA" in lines[0]


def test_progress_stream_key_value_blocks(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    path = tmp_path / "progress.txt"
    run(FrameProgress(True, "cleaning", ProgressStream(str(path))), 2)
    blocks = path.read_text().split("progress=continue\n")
    assert len(blocks) == 3 and blocks[0].startswith("frame=1\ntotal_frames=2\nfps=")
    assert blocks[-1].startswith("frame=2\ntotal_frames=2\n") and blocks[-1].endswith("progress=end\n")
    assert capsys.readouterr().err == ""  # quiet: nothing for people


def test_progress_stream_json_to_a_descriptor(monkeypatch):
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    read, write = os.pipe()
    run(FrameProgress(True, "cleaning", ProgressStream(f"pipe:{write}", "json")), 2)
    os.close(write)  # the stream leaves a descriptor it was given open
    with os.fdopen(read) as handle:
        records = [json.loads(line) for line in handle]
    assert [(r["frame"], r["progress"]) for r in records] == [(1, "continue"), (2, "continue"), (2, "end")]
    assert set(records[0]) == {"frame", "total_frames", "fps", "elapsed_s", "progress"}


def test_exception_progress_target_not_writable(tmp_path):
    with pytest.raises(OutputError, match="cannot write progress to .*missing/p.txt: No such file"):
        ProgressStream(str(tmp_path / "missing" / "p.txt"))
