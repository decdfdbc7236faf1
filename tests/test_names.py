"""`vstream clean` as people call it: odd file names, URLs with passwords, small output mistakes.

Every case runs the real CLI and checks the exit code, a single stderr line, no traceback, and
that nothing is left under the output name unless the run succeeded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vstream.cli import main

from media import make_clip, read_video

FRAMES = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("names") / "clip.mp4", frames=FRAMES, width=64, height=48, audio=False)


def clean(*args, model: Path):
    return CliRunner().invoke(main, ["clean", *map(str, args), "--model", str(model), "--workers", "0", "-q"],
                              catch_exceptions=False)


def one_line_error(result, message: str) -> str:
    """The run failed with exit 1 and said only ``Error: …message…``; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# Point 11: a name that could be a pattern or a list file, but names an existing file.

@pytest.mark.parametrize("name", ["holiday [1080p].mp4", "what?.mp4", "*star*.mp4"])
def test_an_existing_file_is_that_file_whatever_its_name(tmp_path, clip, dimming_model, name):
    source = tmp_path / name
    source.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mp4"
    result = clean(source, "-o", out, model=dimming_model)
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert out.is_file() and len(read_video(out)[0]) == FRAMES


def test_a_name_with_a_leading_at_is_that_file(tmp_path, clip, dimming_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("@home.mp4").write_bytes(clip.read_bytes())
    result = clean("@home.mp4", model=dimming_model)
    assert result.exit_code == 0, result.output
    assert len(read_video(tmp_path / "@home.clean.mp4")[0]) == FRAMES


def test_a_pattern_that_matches_nothing_creates_nothing(tmp_path, dimming_model):
    out = tmp_path / "out"
    line = one_line_error(clean(tmp_path / "holiday [1080p].mp4", "-o", out, model=dimming_model), "input not found")
    assert "holiday [1080p].mp4" in line
    assert not out.exists()



# Point 13: small output mistakes, said plainly.

@pytest.mark.parametrize("contents", [[], ["notes.txt"]])
def test_a_folder_without_videos_creates_nothing(tmp_path, dimming_model, contents):
    footage = tmp_path / "footage"
    footage.mkdir()
    for name in contents:
        (footage / name).write_text("not footage")
    out = tmp_path / "out"
    one_line_error(clean(footage, "-o", out, model=dimming_model), f"no videos found in {footage}")
    assert not out.exists()
