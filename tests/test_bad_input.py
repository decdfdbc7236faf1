"""The bad inputs of issue 24 through ``vstream clean``, as people call it: damaged files, encoder
options, configs, odd file names, URLs with passwords, small output mistakes. Each case checks the
exit code, one line on stderr (besides the summary of a run that wrote its output), never a
traceback, and nothing under the output name but a complete file."""

from __future__ import annotations

import functools
import http.server
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from vstream.cli import common, main
from vstream.cli.common import setup_logging
from vstream.errors import redact
from vstream.drivers.pipeline import default_output

from media import audio_packets, make_clip, read_video, synthetic_frame, truncated_faststart, zeroed_ctts

FRAMES = 6


@pytest.fixture(autouse=True)
def no_plain_progress(monkeypatch):
    """However slow the machine, no progress line joins the one line these tests count."""
    monkeypatch.setattr(common, "PLAIN_EVERY_S", float("inf"), raising=False)


def run_clean(*args, model: Path, quiet: bool = True):
    """``vstream clean ARGS`` in-process, in one worker-free process; any exception but an exit fails."""
    return CliRunner().invoke(main, ["clean", *map(str, args), "--model", str(model), "--workers", "0",
                                     *(["-q"] if quiet else [])], catch_exceptions=False)


def one_line_error(result, message: str) -> str:
    """The run failed with exit 1 and said only ``Error: …message…``; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# Points 4, 7-10: damaged files, encoder options and configs.

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("bad") / "clip.mp4", frames=FRAMES, width=64, height=48, audio=False)


def clean(folder: Path, source: Path, *args: str, model: Path):
    """Run ``vstream clean SOURCE -o folder/out.mp4``; (exit code, stderr lines, files in folder after)."""
    result = run_clean(source, "-o", folder / "out.mp4", "--max-side", "64", *args, model=model, quiet=False)
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr.splitlines(), sorted(p.name for p in folder.iterdir())


def bad_yaml(folder: Path) -> Path:
    path = folder / "bad.yaml"
    path.write_text("encode:\n  crf: [18, 20\n")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "turbo"], "preset turbo is not valid for libx264; valid: ultrafast, superfast, veryfast"),
        (["--preset", "dashcam"], "--preset dashcam is the encoder's speed preset; for the dashcam settings use -c dashcam"),
        (["--crf", "60"], "crf 60 is not valid for libx264; valid: 0-51"),
        (["--codec", "libvpx-vp9", "--crf", "64"], "crf 64 is not valid for libvpx-vp9; valid: 0-63"),
        (["--encoder-opt", "bogus=1"], "encoder libx264 has no option 'bogus'"),
        (["-c", bad_yaml], "line 3, column 1: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence"),
        (["-ss", "5"], "start 5 s is past the end of"),
    ],
)
def test_refused_in_one_line_before_anything_is_written(tmp_path, clip, dimming_model, args, message):
    folder = tmp_path / "run"
    folder.mkdir()
    args = [str(a(tmp_path)) if callable(a) else a for a in args]
    code, lines, files = clean(folder, clip, *args, model=dimming_model)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert files == []


def test_truncated_file_says_how_many_frames_of_those_announced(tmp_path, dimming_model):
    """The container announces 40 frames; what is left of them is cleaned, and the shortfall said."""
    source = truncated_faststart(make_clip(tmp_path / "in.mp4", frames=40, audio=False), tmp_path / "cut.mp4", 0.6)
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, source, model=dimming_model)
    decoded = len(read_video(folder / "out.mp4")[0])
    assert code == 0 and 5 < decoded < 40
    assert len(lines) == 2 and lines[1].startswith("wrote "), lines
    assert f"cut.mp4 ended early: {decoded} of the 40 frames its container announces were decoded" in lines[0]
    assert files == ["out.mp4"]


def test_timestamps_that_repeat_or_go_back_are_repaired(tmp_path, dimming_model):
    """Zeroed composition offsets (a damaged ctts) used to crash the muxer with two tracebacks."""
    source = zeroed_ctts(make_clip(tmp_path / "in.mp4", frames=48, audio=False, bframes=3), tmp_path / "bad.mp4")
    _, given, _ = read_video(source)
    assert any(b <= a for a, b in zip(given, given[1:]))  # the damage this test is about
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, source, model=dimming_model)
    assert code == 0
    assert len(lines) == 2 and "frames had out-of-order or repeated timestamps" in lines[0], lines
    _, pts, _ = read_video(folder / "out.mp4")
    assert len(pts) == 48 and all(b > a for a, b in zip(pts, pts[1:]))
    assert files == ["out.mp4"]


# Point 11: a name that could be a pattern or a list file, but names an existing file.

@pytest.mark.parametrize("name", ["holiday [1080p].mp4", "what?.mp4", "*star*.mp4"])
def test_an_existing_file_is_that_file_whatever_its_name(tmp_path, clip, dimming_model, name):
    source = tmp_path / name
    source.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mp4"
    result = run_clean(source, "-o", out, model=dimming_model)
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert out.is_file() and len(read_video(out)[0]) == FRAMES


def test_a_name_with_a_leading_at_is_that_file(tmp_path, clip, dimming_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("@home.mp4").write_bytes(clip.read_bytes())
    result = run_clean("@home.mp4", model=dimming_model)
    assert result.exit_code == 0, result.output
    assert len(read_video(tmp_path / "@home.clean.mp4")[0]) == FRAMES


def test_a_pattern_that_matches_nothing_creates_nothing(tmp_path, dimming_model):
    out = tmp_path / "out"
    line = one_line_error(run_clean(tmp_path / "holiday [1080p].mp4", "-o", out, model=dimming_model), "input not found")
    assert "holiday [1080p].mp4" in line
    assert not out.exists()


# Point 12: credentials in URLs, whatever they hold.

@pytest.mark.parametrize("url, secret", [
    ("rtsp://admin:p@ss@127.0.0.1:9/x", "p@ss"),
    ("rtsp://admin:pa/ss@127.0.0.1:9/x", "pa/ss"),
])
def test_passwords_with_at_or_slash_never_reach_errors(tmp_path, dimming_model, url, secret):
    result = run_clean(url, "-o", tmp_path / "o.mp4", "--max-retries", "0", "--open-timeout", "2", model=dimming_model)
    line = one_line_error(result, "rtsp://***@127.0.0.1:9/x")
    assert secret not in line and "admin" not in line and "ss@" not in line
    assert list(tmp_path.iterdir()) == []


def test_an_at_in_the_path_after_the_credentials_is_kept(tmp_path, dimming_model):
    result = run_clean("rtsp://admin:hunter2@127.0.0.1:9/live@main", "-o", tmp_path / "o.mp4", "--max-retries", "0",
                   "--open-timeout", "2", model=dimming_model)
    line = one_line_error(result, "rtsp://***@127.0.0.1:9/live@main")
    assert "hunter2" not in line


def test_redaction_rule():
    cases = {
        "rtsp://admin:p@ss@cam:554/x": "rtsp://***@cam:554/x",
        "rtsp://admin:pa/ss@cam/x": "rtsp://***@cam/x",
        "rtsp://admin:pa/s/s@cam": "rtsp://***@cam",
        "rtsp://u:pw@cam/live@main": "rtsp://***@cam/live@main",
        "rtsp://cam/live@main": "rtsp://***@main",  # ambiguous: hidden, on the safe side
        "cannot open rtsp://cam/x: refused (ask ops@example.com)": "cannot open rtsp://cam/x: refused (ask ops@example.com)",
        "from rtsp://a:b@h/1 to rtmp://c:d@i/2": "from rtsp://***@h/1 to rtmp://***@i/2",
    }
    assert {text: redact(text) for text in cases} == cases


def test_log_records_are_redacted_whoever_logs_them(capsys):
    setup_logging(quiet=False, verbose=False)
    logging.getLogger("libav.rtsp").warning("lost rtsp://admin:pa/ss@cam/x")
    assert capsys.readouterr().err.strip() == "vstream: WARNING: lost rtsp://***@cam/x"


@pytest.fixture
def http_server(clip, tmp_path):
    """Serves a Matroska copy of ``clip`` (read front to back: no range requests needed)."""
    served = tmp_path / "served"
    served.mkdir()
    make_clip(served / "clip.mkv", frames=FRAMES, width=64, height=48, audio=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=served)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_url_input_is_named_after_its_path_never_its_credentials(tmp_path, http_server, dimming_model, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run_clean(f"http://admin:secret@127.0.0.1:{http_server}/clip.mkv", model=dimming_model)
    assert result.exit_code == 0 and "secret" not in result.output, result.output
    assert [p.name for p in work.iterdir()] == ["clip.clean.mkv"]
    assert default_output("https://u:p@cam/") == Path("stream.clean.mkv")


# Point 13: small output mistakes, said plainly.

def test_an_unknown_output_extension_names_the_users_path(tmp_path, clip, dimming_model):
    out = tmp_path / "out.xyz"
    line = one_line_error(run_clean(clip, "-o", out, model=dimming_model), f"cannot write {out}: ")
    assert ".part" not in line
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_as_the_output_of_one_input(tmp_path, clip, dimming_model):
    folder = tmp_path / "out"
    folder.mkdir()
    line = one_line_error(run_clean(clip, "-o", folder, model=dimming_model), "is a folder")
    assert "--overwrite" not in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("contents", [[], ["notes.txt"]])
def test_a_folder_without_videos_creates_nothing(tmp_path, dimming_model, contents):
    footage = tmp_path / "footage"
    footage.mkdir()
    for name in contents:
        (footage / name).write_text("not footage")
    out = tmp_path / "out"
    one_line_error(run_clean(footage, "-o", out, model=dimming_model), f"no videos found in {footage}")
    assert not out.exists()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the process list through /proc")
def test_passwords_leave_the_process_list(tmp_path, dimming_model):
    """While vstream waits on a camera, ``ps`` (and Ray, which records a driver's command line as
    its job's entrypoint) reads the URL with its credentials hidden."""
    with socket.create_server(("127.0.0.1", 0)) as camera:  # accepts, never answers
        port = camera.getsockname()[1]
        url = f"rtsp://admin:hunter2@127.0.0.1:{port}/x"
        proc = subprocess.Popen([sys.executable, "-m", "vstream", "clean", url, "-o", str(tmp_path / "o.mp4"),
                                 "--model", str(dimming_model), "--workers", "0", "--max-retries", "0",
                                 "--open-timeout", "60", "-q"], stderr=subprocess.DEVNULL)
        try:
            cmdline = Path(f"/proc/{proc.pid}/cmdline")
            deadline = time.monotonic() + 60
            while "***@" not in (shown := cmdline.read_bytes().decode()) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.kill()
            proc.wait()
    assert f"rtsp://***@127.0.0.1:{port}/x" in shown and "hunter2" not in shown


# Issue 33: stdin, archives, models, configs and start-up, as people really have them.

def clean_stdin(data: bytes, folder: Path, *args, timeout: float = 60) -> subprocess.CompletedProcess:
    """``… | vstream clean - ARGS`` in ``folder``, as a shell pipe runs it."""
    return subprocess.run([sys.executable, "-m", "vstream", "clean", "-", *map(str, args)], input=data, cwd=folder,
                          capture_output=True, text=False, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return result.stderr.decode().strip().splitlines()


def clean_on(workers: str, source: Path, out: Path, model: Path):
    """``vstream clean SOURCE -o OUT`` in-process with ``workers`` Ray actors (0: none)."""
    return CliRunner().invoke(main, ["clean", str(source), "-o", str(out), "--model", str(model), "--max-side", "64",
                                     "--workers", workers], catch_exceptions=False)


@pytest.mark.parametrize("live", [[], ["--no-live"]])
def test_a_recorded_file_on_stdin_keeps_every_frame_in_one_file(tmp_path, dimming_model, live):
    """The README's ``ffmpeg -i cam.ts -c copy -f mpegts - | vstream clean - -o rec/cam.mkv``."""
    clip = make_clip(tmp_path / "cam.ts", frames=60, width=64, height=48, audio=True)
    (tmp_path / "rec").mkdir()
    result = clean_stdin(clip.read_bytes(), tmp_path, *live, "-o", "rec/cam.mkv", "--model", dimming_model,
                         "--workers", "0", "-q")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "rec").iterdir()] == ["cam.mkv"]
    assert len(read_video(tmp_path / "rec" / "cam.mkv")[0]) == 60
    assert len(audio_packets(tmp_path / "rec" / "cam.mkv")) == len(audio_packets(clip))


def test_stdin_to_a_missing_folder_names_it(tmp_path, dimming_model):
    clip = make_clip(tmp_path / "cam.ts", frames=6, width=64, height=48, audio=False)
    result = clean_stdin(clip.read_bytes(), tmp_path, "-o", "rec/cam.mkv", "--model", dimming_model, "--workers", "0")
    assert result.returncode == 1 and error_lines(result) == ["Error: output folder does not exist: rec"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.ts"]


@pytest.mark.parametrize("live", [[], ["--live"]])
@pytest.mark.parametrize("data", [b"", bytes(range(256)) * 40], ids=["empty", "garbage"])
def test_unreadable_stdin_is_one_line_not_a_retry(tmp_path, dimming_model, data, live):
    """Stdin cannot reconnect: what cannot be read from it ends the run at once."""
    result = clean_stdin(data, tmp_path, *live, "-o", "cam.mkv", "--model", dimming_model, "--workers", "0",
                         timeout=30)
    assert result.returncode == 1
    assert error_lines(result) == ["Error: cannot open stdin: Invalid data found when processing input"]
    assert list(tmp_path.iterdir()) == []


def contract_breaking_model(path: Path, flaw: str) -> Path:
    """A model that breaks the contract (model_contract.py) in one way: its input is a fixed size, its
    output half the input's size, its input float16, or its metadata's size multiple 0."""
    import onnx
    from onnx import TensorProto, helper

    from vstream.stages import model_contract as mc

    dims = [1, 3, 64, 64] if flaw == "fixed size" else ["N", 3, "H", "W"]
    background = {
        "half size": helper.make_node("AveragePool", [mc.INPUT_NAME], [mc.OUTPUT_BACKGROUND], kernel_shape=[2, 2],
                                      strides=[2, 2]),
        "float16": helper.make_node("Cast", [mc.INPUT_NAME], [mc.OUTPUT_BACKGROUND], to=TensorProto.FLOAT),
    }.get(flaw, helper.make_node("Identity", [mc.INPUT_NAME], [mc.OUTPUT_BACKGROUND]))
    interference = helper.make_node("Sub", [mc.OUTPUT_BACKGROUND, mc.OUTPUT_BACKGROUND], [mc.OUTPUT_INTERFERENCE])
    input_type = TensorProto.FLOAT16 if flaw == "float16" else TensorProto.FLOAT
    graph = helper.make_graph(
        [background, interference], "flawed", [helper.make_tensor_value_info(mc.INPUT_NAME, input_type, dims)],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name in mc.OUTPUT_NAMES],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", mc.OPSET)])
    model.ir_version = 8
    helper.set_model_props(model, {mc.META_KIND: "reflection", **({mc.META_SIZE_MULTIPLE: "0"} if flaw == "size multiple 0" else {})})
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("workers", ["0", "1"])
@pytest.mark.parametrize(("flaw", "message"), [
    ("fixed size", " takes only 64x64 images; a vstream model takes any size (export it with dynamic H and W)"),
    ("half size", " returns 'background' of shape [1, 3, 16, 16] for input [1, 3, 32, 32]; a vstream model returns "
                  "the input's shape"),
    ("float16", "'s 'input' is tensor(float16); a vstream model's input and outputs are float32"),
    ("size multiple 0", "'s metadata vstream.size_multiple must be a whole number of 1 or more, got '0'"),
], ids=["fixed size", "half size", "float16", "size multiple 0"])
def test_a_model_that_breaks_the_contract_is_refused_at_load(tmp_path, clip, flaw, message, workers):
    model = contract_breaking_model(tmp_path / "flawed.onnx", flaw)
    folder = tmp_path / "run"
    folder.mkdir()
    result = clean_on(workers, clip, folder / "out.mp4", model)
    assert result.exit_code == 1 and result.stderr.splitlines() == [f"Error: model {model}{message}"]
    assert list(folder.iterdir()) == []


def test_a_folder_as_the_model_is_said_to_be_one(tmp_path, clip):
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "models").mkdir()
    code, lines, files = clean(folder, clip, model=tmp_path / "models")
    assert code == 1 and lines == [f"Error: model {tmp_path / 'models'} is a folder, not an ONNX file"]
    assert files == []


@pytest.mark.parametrize("source, workers", [("clip", "0"), ("clip", "2"), ("image", "0")])
def test_a_model_that_returns_nan_fails_in_one_line(tmp_path, clip, source, workers):
    """Cleaned with NaN, every frame came out white (exit 0)."""
    from conftest import write_model

    model = write_model(tmp_path / "nan.onnx", float("nan"), 0.0)
    if source == "image":
        clip = tmp_path / "still.png"
        cv2.imwrite(str(clip), synthetic_frame(0, 64, 48))
    folder = tmp_path / "run"
    folder.mkdir()
    out = folder / ("out.png" if source == "image" else "out.mp4")
    result = clean_on(workers, clip, out, model)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: model {model} returned NaN or infinite values for a 64x48 image"]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("strength: abc", "config key strength must be a number, got 'abc'"),
    ("batch: 2.5", "config key batch must be a whole number, got 2.5"),
    ("temporal: {alpha: yes}", "config key temporal.alpha must be a number, got True"),
    ("encode: {crf: fast}", "config key encode.crf must be a number, got 'fast'"),
    ("encode: {options: [crf]}", "config key encode.options must be a mapping, got ['crf']"),
    ("encode: {options: {x264-params: [1]}}", "config key encode.options.x264-params must be text or a number, got [1]"),
    ("encode: {options: {crf: 100}}", "crf 100 is not valid for libx264; valid: 0-51"),
    ("encode: {options: {preset: turbo}}", "preset turbo is not valid for libx264; valid: ultrafast"),
])
def test_every_config_value_is_type_checked_with_its_key_named(tmp_path, clip, dimming_model, yaml_text, message):
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml_text + "\n")
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, clip, "-c", str(preset), model=dimming_model)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"Error: {message}"), lines
    assert files == []


def test_numbers_are_taken_where_ffmpeg_reads_text(tmp_path, clip, dimming_model):
    preset = tmp_path / "mine.yaml"
    preset.write_text("strength: 1\nencode: {bitrate: 400000, crf: null, options: {g: 12}}\n")
    folder = tmp_path / "run"
    folder.mkdir()
    code, lines, files = clean(folder, clip, "-c", str(preset), model=dimming_model)
    assert code == 0 and files == ["out.mp4"], lines


def _started(pid: int, moment: str) -> bool:
    """Whether process ``pid`` is at ``moment`` of its start-up: loading its modules (PyAV's
    libraries are mapped) or starting Ray (it has child processes: Ray's servers)."""
    proc = Path(f"/proc/{pid}")
    if moment == "loading modules":
        return "libavcodec" in (proc / "maps").read_text()
    return any(_children(task) for task in (proc / "task").iterdir())


def _children(task: Path) -> str:
    """A thread's child process ids, or nothing if the thread ended while we looked."""
    try:
        return (task / "children").read_text().strip()
    except FileNotFoundError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="watches the start-up through /proc")
@pytest.mark.parametrize("moment", ["loading modules", "starting Ray"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_stops_in_one_line(tmp_path, clip, dimming_model, signum, moment):
    """Ctrl-C (SIGINT, as a terminal's job control sends it) or SIGTERM before any work: exit 130,
    one line, nothing written (it was a traceback, exit code 15, or a silent kill)."""
    folder = tmp_path / "run"
    folder.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vstream", "clean", str(clip), "-o", str(folder / "out.mp4"), "--model",
         str(dimming_model), "--workers", "1" if moment == "starting Ray" else "0", "-q"],
        stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not _started(proc.pid, moment) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and stderr.splitlines() == ["interrupted: nothing written"], stderr
    assert list(folder.iterdir()) == []
