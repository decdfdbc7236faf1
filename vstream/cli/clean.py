"""``vstream clean``: one file, image or stream in, a cleaned copy out."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click

from ..config import CleanConfig, load_config, shipped_presets
from ..drivers.archive import DEFAULT_SEGMENT_S, Progress, clean_archive, is_archive_spec
from ..drivers.live import LiveOptions, clean_live, is_live
from ..drivers.pipeline import CleanReport, clean_still, clean_video, default_output
from ..errors import ConfigError, OutputError, redact
from ..stages.decode import STDIN, Selection, is_image
from ..stages import encoders
from ..stages.encode import EncodeSettings
from ..stages.model_contract import KINDS
from .common import (EXIT_INTERRUPTED, FrameProgress, eta_text, graceful_stop, quiet_option, setup_logging, status,
                     user_errors, verbose_option)
from .params import KeyValue, Time
from .progress import FORMATS, ProgressStream

LIVE_PRESET = "live"


def live_options(command):
    """The options that only live input reads."""
    for option in reversed((
        click.option("--live/--no-live", default=None,
                     help="Treat INPUT as a live feed (default for rtsp, rtsps, rtmp, srt, udp; pass it for "
                          "an http(s) stream, or for a camera's stream on stdin: - is read as a file by default)."),
        click.option("--listen", is_flag=True,
                     help="Live rtsp:// INPUT: listen there for a publisher to push to vstream "
                          "(FFmpeg's listen mode) instead of pulling from a camera."),
        click.option("--rtsp-transport", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True,
                     help="RTSP transport for live input."),
        click.option("--open-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="Seconds to wait for a live feed to answer."),
        click.option("--read-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                     help="Seconds of silence after which a live feed counts as lost (then reconnected)."),
        click.option("--max-retries", type=click.IntRange(min=0),
                     help="Reconnect attempts in a row before giving up. Default: never give up."),
        click.option("--retry-for", type=click.FloatRange(min=0),
                     help="Seconds without frames before giving up. Default: never give up."),
        click.option("--max-wait", type=click.FloatRange(min=0), default=0.15, show_default=True,
                     help="Drop policy: a frame that waited longer than this many seconds for the "
                          "cleaner is dropped (oldest first, counted) so latency cannot grow."),
        click.option("--segment-time", type=click.FloatRange(min=1), default=60.0, show_default=True,
                     help="Seconds per segment file when recording a live feed."),
        click.option("--stats", is_flag=True,
                     help="Every 5 s: input and output fps, dropped frames, added latency p50/p95."),
    )):
        command = option(command)
    return command


ENCODE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EncodeSettings)}


def encoder_options(command):
    """The encoder's options, named as in ffmpeg."""
    for option in reversed((
        click.option("--codec", help=f"Video encoder, as ffmpeg's -c:v (libx264, libx265, libvpx-vp9, ...; "
                                     f"a codec, h264, names FFmpeg's encoder of it). Default: {ENCODE_DEFAULTS['codec']}, or the -c config's."),
        click.option("--crf", type=click.FloatRange(min=0),
                     help=f"Constant rate factor (quality), as ffmpeg's -crf; its range depends on the encoder "
                          f"(libx264 0-51, libvpx-vp9 0-63). Default: {ENCODE_DEFAULTS['crf']}, or the -c config's."),
        click.option("--preset", "encoder_preset",
                     help=f"Encoder speed preset, as ffmpeg's -preset (libx264: ultrafast ... veryslow; libsvtav1: "
                          f"0-13). Default: {encoders.DEFAULT_PRESET} for libx264 and libx265, else the encoder's own."),
        click.option("--tune", help="Encoder tuning, as ffmpeg's -tune (libx264: film, animation, grain, zerolatency, ...)."),
        click.option("-g", "--gop", type=click.IntRange(min=1), help="Frames from one keyframe to the next, as ffmpeg's -g."),
        click.option("-b:v", "--bitrate", help="Average bitrate instead of --crf, as ffmpeg's -b:v (4M, 800k)."),
        click.option("--maxrate", help="Peak bitrate, as ffmpeg's -maxrate; needs --bufsize. Caps --crf or --bitrate."),
        click.option("--bufsize", help="Rate control buffer, as ffmpeg's -bufsize (e.g. twice --maxrate)."),
        click.option("--pix-fmt", help="Output pixel format, as ffmpeg's -pix_fmt. Default: yuv420p where the encoder "
                                       "takes it (mjpeg: yuvj420p)."),
        click.option("--x264-params", help="libx264's own options, as ffmpeg's -x264-params (keyint=60:aq-mode=3)."),
        click.option("--encoder-opt", type=KeyValue(), multiple=True,
                     help="Any option of the encoder, passed as it is (repeatable): --encoder-opt rc-lookahead=20."),
    )):
        command = option(command)
    return command


def file_options(command):
    """Options for files, not live input: the part to clean (as ffmpeg's input options), progress for programs."""
    for option in reversed((
        click.option("-ss", "--start", type=Time(), default=0.0, help="Start this far into INPUT (seconds or [HH:]MM:SS), as ffmpeg's -ss."),
        click.option("-t", "--duration", type=Time(positive=True), help="Clean only this long a part (seconds or [HH:]MM:SS), as ffmpeg's -t."),
        click.option("-an", "--no-audio", is_flag=True, help="Drop the audio, as ffmpeg's -an."),
        click.option("--progress", "progress_target", metavar="TARGET",
                     help="Also write progress for programs, as ffmpeg's -progress: to a file, - (stdout) or pipe:N."),
        click.option("--progress-format", type=click.Choice(FORMATS), default="kv", show_default=True,
                     help="kv: key=value lines, a block ending in progress=continue|end; json: a JSON object a line."),
    )):
        command = option(command)
    return command


@click.command("clean")
@click.argument("source", metavar="INPUT")
@click.option("-o", "--output", type=click.Path(),
              help="Output file. Default: INPUT's name with .clean before the extension. Live: a "
                   "file name for the segments, rtsp://… or rtmp://… to push to, or - for MPEG-TS on stdout.")
@click.option("-y", "--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("-c", "--config", "preset", metavar="CONFIG",
              help="Settings file (.yaml) or built-in profile (default, dashcam, live, shadow, water, occlusion) "
                   "for the cleaner and the encoder; the flags below override it. Default: live for live input, "
                   "else default. Not the encoder's speed: that is --preset.")
@click.option("--kind", type=click.Choice(KINDS), help="Interference to remove (picks the shipped model).")
@click.option("--model", type=click.Path(path_type=Path), help="An .onnx model instead of the shipped one.")
@click.option("--strength", type=click.FloatRange(0, 1), help="0 keeps the input, 1 removes the full layer.")
@click.option("--floor", "residual_floor", type=click.FloatRange(0, 0.5, max_open=True),
              help="Drop corrections smaller than this (0..1, default 0.01) as network noise; 0 keeps them all.")
@click.option("--max-side", type=click.IntRange(min=32), help="Longest side the network sees (pyramid top).")
@click.option("--stationary/--no-stationary", default=None,
              help="Also remove the layer that stays put on glass moving with the camera (dashcams, domes), "
                   "estimated from the scene moving behind it. Default: the -c config's.")
@click.option("--workers", type=click.IntRange(min=0), help="Ray actors (0: in-process, no Ray). Default: in-process on up to 2 cores, else one per core.")
@click.option("--address", help="Join an existing Ray cluster (auto, ray://host:10001) instead of starting one.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="ONNX Runtime device (cuda needs onnxruntime-gpu).")
@encoder_options
@file_options
@click.option("--compare", is_flag=True, help="Write INPUT | CLEANED side by side, to judge the result.")
@click.option("--suffix", default="", help="Archives: added to each output's name (OUTDIR mirrors the input tree).")
@click.option("--jobs", type=click.IntRange(min=1), help="Archives: files or segments cleaned at once (default: the cluster's CPUs).")
@click.option("--segment-seconds", type=click.FloatRange(min=0), default=DEFAULT_SEGMENT_S, show_default=True,
              help="Archives: files of 1.5 times this or longer are cut at keyframes into segments of about "
                   "this many seconds, cleaned in parallel and joined (0: never split).")
@live_options
@quiet_option
@verbose_option
def clean_command(source, output, overwrite, preset, kind, model, strength, residual_floor, max_side, stationary, workers, address,
                  device, codec, crf, encoder_preset, tune, gop, bitrate, maxrate, bufsize, pix_fmt, x264_params,
                  encoder_opt, start, duration, no_audio, progress_target, progress_format, compare, suffix, jobs,
                  segment_seconds, live, listen, rtsp_transport, open_timeout, read_timeout, max_retries, retry_for,
                  max_wait, segment_time, stats, quiet, verbose) -> None:
    """Remove the interference layer from INPUT: a video file, an image, a URL FFmpeg reads,
    - for a file on stdin (with -o), many files (a folder, a quoted glob, or @list.txt) with
    -o OUTDIR, or a live feed (rtsp://, rtsps://, rtmp://, srt://, udp://, or --live).

    \b
    Examples:
      vstream clean dashcam.mp4                    -> dashcam.clean.mp4
      vstream clean shop.mov -c dashcam --crf 20 -o out.mp4
      vstream clean long.mp4 -ss 1:30 -t 20 -an -b:v 4M --maxrate 6M --bufsize 8M
      vstream clean rainy.mp4 -c water             -> raindrops: the water model and its preset
      vstream clean photo.jpg --compare            -> photo.compare.jpg
      vstream clean /archive/2024 -o /clean/2024   -> every video, same tree, resumable
      vstream clean rtsp://cam/live -o rec/cam.mkv --stats  -> rec/cam-<UTC start>.mkv each 60 s
      vstream clean rtsp://cam/live -o - | ffplay -
    """
    setup_logging(quiet, verbose)
    live = is_live(source) if live is None else live
    if crf is not None and bitrate is not None:
        raise click.UsageError("--crf and --bitrate are alternatives: give one")
    extra = dict(encoder_opt) | ({"x264-params": x264_params} if x264_params else {})
    selection = Selection(start, duration, audio=not no_audio)
    with user_errors(), graceful_stop():
        if encoder_preset in shipped_presets():
            raise ConfigError(f"--preset {encoder_preset} is the encoder's speed preset; "
                              f"for the {encoder_preset} settings use -c {encoder_preset}")
        config = load_config(preset or (LIVE_PRESET if live else "default"), {
            "kind": kind, "model": str(model) if model else None, "strength": strength,
            "residual_floor": residual_floor, "max_side": max_side, "stationary.enabled": stationary, "workers": workers, "device": device, "encode.codec": codec,
            "encode.crf": crf, "encode.preset": encoder_preset, "encode.tune": tune, "encode.pix_fmt": pix_fmt,
            "encode.gop": gop, "encode.bitrate": bitrate, "encode.maxrate": maxrate, "encode.bufsize": bufsize,
            "encode.options": extra or None,
        })
        if live:
            if compare:
                raise click.UsageError("--compare is for files, not live input")
            if selection != Selection() or progress_target:
                raise click.UsageError("-ss, -t, -an and --progress are for files, not live input")
            if output is None:
                raise click.UsageError("live input needs -o: a file name for segments, rtsp://… or -")
            if listen and not source.lower().startswith("rtsp://"):
                raise click.UsageError("--listen takes an rtsp:// INPUT to listen on")
            options = LiveOptions(rtsp_transport, open_timeout, read_timeout, max_retries, retry_for,
                                  max_wait_s=max_wait, segment_time_s=segment_time, listen=listen)
            _clean_live(source, output, config, options, address, stats and not quiet, quiet)
            return
        if source == STDIN and output is None:
            raise click.UsageError("reading stdin (-) needs -o OUTPUT")
        output = Path(output) if output else None
        if is_archive_spec(source):
            if output is None:
                raise click.UsageError("cleaning many files needs -o OUTDIR")
            clean_many(source, output, config, suffix, address, jobs, segment_seconds, quiet, selection,
                       _progress_stream(progress_target, progress_format))
            return
        output = output or default_output(source, compare)
        if output.exists() and not output.is_dir() and not overwrite:  # a folder: check_writable says so
            raise OutputError(f"{output} exists; pass --overwrite to replace it")
        if is_image(source):
            report = clean_still(source, output, config, compare, overwrite)
        else:
            progress = FrameProgress(quiet, "cleaning", _progress_stream(progress_target, progress_format))
            try:
                report = clean_video(source, output, config, compare=compare, address=address, on_start=progress.start,
                                     on_frame=progress.advance, overwrite=overwrite, selection=selection)
            finally:
                progress.close()
        _summary(source, output, report, quiet)


def _summary(source: str, requested: Path, report: CleanReport, quiet: bool) -> None:
    """The last line of a file clean; exit 130 if it was interrupted, 1 if ``requested`` was
    taken meanwhile (by another run) so that the result went to a numbered name."""
    if report.interrupted:
        if not report.frames:
            status("interrupted before any frame was encoded: nothing written", quiet=False)
        else:
            status(f"interrupted: {report.frames} frames written to {report.output} (playable)", quiet=False)
        raise SystemExit(EXIT_INTERRUPTED)
    if report.decode_errors:
        status(f"warning: {report.decode_errors} undecodable packets in {redact(source)} were skipped", quiet)
    if report.output != requested:
        raise OutputError(f"{requested} appeared while cleaning (another run?) and was left as it is; "
                          f"this run's result is {report.output} (--overwrite replaces)")
    status(f"wrote {report.output}: {report.frames} frames in {report.seconds:.1f} s "
           f"({report.fps:.1f} fps)", quiet)


def _progress_stream(target: str | None, fmt: str) -> ProgressStream | None:
    return ProgressStream(target, fmt) if target else None


PROGRESS_EVERY_S = 10.0


def clean_many(spec: str, outdir: Path, config: CleanConfig, suffix: str, address: str | None,
               jobs: int | None, segment_s: float, quiet: bool, selection: Selection = Selection(),
               stream: ProgressStream | None = None) -> None:
    """Archive mode: a line per finished file, the whole job's progress every
    :data:`PROGRESS_EVERY_S` at most (and to ``stream`` at every step), a summary, exit code 123
    if any file failed."""
    last: dict[str, object] = {}
    last_line = time.monotonic()

    def on_file(source: str, result: dict) -> None:
        for warning in result["warnings"]:
            status(f"warning: {warning if source in warning else f'{source}: {warning}'}", quiet)
        if result["state"] == "failed":
            status(f"error: cannot clean {source}: {result['error']}")
        else:
            status(f"done: {source} ({result['frames']} frames)", quiet)

    def on_progress(progress: Progress) -> None:
        nonlocal last_line
        if stream is not None:
            last.update(files=progress.files_done, total_files=progress.files_total, frame=progress.frames_done,
                        total_frames=progress.frames_total, fps=round(progress.fps, 2),
                        elapsed_s=round(progress.seconds, 2))
            stream.update(last)
        if time.monotonic() - last_line >= PROGRESS_EVERY_S:
            last_line = time.monotonic()
            status(progress_line(progress), quiet)

    try:
        report = clean_archive(spec, outdir, config, suffix=suffix, address=address, jobs=jobs, segment_s=segment_s,
                               on_file=on_file, on_progress=on_progress, selection=selection)
    finally:
        if stream is not None:
            stream.close(last)
    for skipped in report.skipped_other:
        status(f"skipped: {skipped} (not a video or an image)", quiet)
    hours = report.footage_s / 3600
    status(
        f"{'interrupted (the same command resumes): ' if report.interrupted else ''}"
        f"{report.done} done, {report.skipped_done} already done, {len(report.failed)} failed, "
        f"{len(report.skipped_other)} other files skipped; {hours:.2f} h of footage in {report.seconds:.0f} s "
        f"({report.frames / max(report.seconds, 1e-9):.1f} fps)",
        quiet and not report.failed and not report.interrupted,
    )
    raise SystemExit(report.exit_code)


def progress_line(progress: Progress) -> str:
    """``progress: 3/10 files, 1200/5000 frames, 35.1 fps, ETA 1m48s``."""
    line = (f"progress: {progress.files_done}/{progress.files_total} files, "
            f"{progress.frames_done}/{progress.frames_total} frames, {progress.fps:.1f} fps")
    if progress.eta_s is not None:
        line += f", ETA {eta_text(progress.eta_s)}"
    return line


def _clean_live(source, output, config, options, address, stats, quiet) -> None:
    """Run a live clean until SIGINT/SIGTERM (exit 0) or until the feed is given up on (exit 1)."""
    report = clean_live(source, output, config, options, address=address,
                        on_stats=(lambda line: status(line)) if stats else None)
    written = ", ".join(report.outputs) or "nothing"
    cut_off = f", {report.in_flight} in flight at the stop (not written)" if report.interrupted or report.in_flight else ""
    status(f"{'stopped' if report.interrupted else 'input ended'}: {report.frames_in} frames in, "
           f"{report.frames_out} out, {report.dropped} dropped{cut_off}, {report.reconnects} reconnects, "
           f"added latency p50 {report.latency_p50_ms:.0f} ms p95 {report.latency_p95_ms:.0f} ms "
           f"over {report.seconds:.0f} s; wrote {written}", quiet)
