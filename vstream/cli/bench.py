"""``vstream bench``: clean fps against plain transcode fps, at several frame sizes, in one run."""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import click

from ..evaluation.bench import (ARCHIVE_SEGMENTS, SIZES, SLIDE_FRAMES, bench_archive, bench_size, fidelity, schedule_fidelity,
                     slide_fidelity)
from ..config import load_config
from ..evaluation.evaluate import find_pairs
from ..samples import sample_clip
from ..stagetimes import STAGES
from .common import quiet_option, setup_logging, status, user_errors


@click.command("bench")
@click.option("--input", "sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Clip to scale to each size. Default: the sample that ships with vstream.")
@click.option("--sizes", default="720p,1080p", show_default=True,
              help=f"Comma-separated, from {', '.join(SIZES)}; empty for none.")
@click.option("--frames", type=click.IntRange(min=10), default=150, show_default=True)
@click.option("--repeat", "repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Rounds of the three speed cases per size, interleaved; with more than one, each ratio's "
                   "median and range over the rounds is printed too.")
@click.option("-c", "--config", "preset", default="default", show_default=True, help="Preset or YAML file.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(min=0), help="Ray actors (0: in-process).")
@click.option("--preset", "encoder_preset", help="Encoder preset for both runs.")
@click.option("--stationary/--no-stationary", default=None,
              help="Clean with the stationary-layer stage on (or off); its cost shows in the stage ms. Default: the -c config's.")
@click.option("--fidelity", "clean_clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also clean this clip (repeatable) and report output-vs-input PSNR (on footage with "
                   "nothing to remove it should stay high), and, encoded losslessly, the scheduled output's "
                   "PSNR against every-frame inference and both outputs' flicker in still regions. "
                   "Skips the speed runs if --sizes is empty.")
@click.option("--slide", "slide_sets", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help=f"Also pan over each photo of this folder of pairs with ground truth (repeatable; e.g. "
                   f"eval/location_aware_real): {SLIDE_FRAMES} frames of a crop sliding corner to corner, cleaned "
                   "losslessly with the network on every frame and as scheduled, each scored against the same "
                   "crops of the ground truth.")
@click.option("--archive-seconds", type=click.FloatRange(min=0), default=0, show_default=True,
              help=f"Also time archive jobs on a clip this long at 720p (a keyframe every 2 s): cleaned whole and "
                   f"as {ARCHIVE_SEGMENTS} segments on one job (segmenting's overhead), then as {ARCHIVE_SEGMENTS} "
                   "segments on each --archive-jobs (scaling). 0: skip.")
@click.option("--archive-jobs", default="1,2,4", show_default=True, help="Comma-separated job counts for --archive-seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout instead of a table.")
@quiet_option
def bench_command(sample, sizes, frames, repeats, preset, model, workers, encoder_preset, stationary, clean_clips, slide_sets,
                  archive_seconds, archive_jobs, as_json, quiet) -> None:
    """Time `vstream clean` against a plain PyAV transcode with the same encoder settings.

    They run back to back on the same clip (transcode, clean with the network on every frame,
    clean as the preset schedules it); the ratio of their fps is the figure to compare between
    machines (absolute fps depends on the machine and its load).
    """
    setup_logging(quiet, False)
    names = [s.strip() for s in sizes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SIZES]
    if unknown:
        raise click.BadParameter(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}", param_hint="--sizes")
    counts = [j.strip() for j in archive_jobs.split(",") if j.strip()]
    if not counts or not all(j.isdigit() and int(j) >= 1 for j in counts):
        raise click.BadParameter("give whole numbers of 1 or more, e.g. 1,2,4", param_hint="--archive-jobs")
    jobs = sorted({int(j) for j in counts})
    with user_errors():
        config = load_config(preset, {"model": str(model) if model else None, "workers": workers,
                                      "encode.preset": encoder_preset, "stationary.enabled": stationary})
        sample = sample or sample_clip()
        slide_pairs = [(folder, find_pairs(folder)[1]) for folder in slide_sets]  # checked before any work
        for folder, pairs in slide_pairs:
            if any(truth is None for _, truth in pairs):
                raise click.BadParameter(f"{folder} has no ground truth to score against", param_hint="--slide")
        results, psnrs, slides, archive = [], [], [], None
        with tempfile.TemporaryDirectory(prefix="vstream-bench-") as workdir:
            for size in names:
                status(f"bench {size}: {frames} frames, {config.encode.codec} {config.encode.preset}"
                       + (f", {repeats} rounds" if repeats > 1 else ""), quiet)
                results.extend(bench_size(sample, size, frames, config, Path(workdir), repeats))
            for clip in clean_clips:
                status(f"fidelity: {clip.name}", quiet)
                row = {"clip": clip.name}
                for label, crf in (("psnr_db", config.encode.crf), ("psnr_lossless_db", 0)):
                    row[label], row["frames"] = fidelity(clip, replace(config, encode=replace(config.encode, crf=crf)), Path(workdir))
                row["schedule"] = asdict(schedule_fidelity(clip, config, Path(workdir)))
                psnrs.append(row)
            for folder, pairs in slide_pairs:
                for n, (image, truth) in enumerate(pairs, 1):
                    status(f"slide {folder.name} {n}/{len(pairs)}: {image.name}", quiet)
                    slides.append(slide_fidelity(image, truth, config, Path(workdir)))
            if archive_seconds:
                status(f"archive: {archive_seconds:g} s at 720p, whole and {ARCHIVE_SEGMENTS} segments on "
                       f"{', '.join(map(str, jobs))} jobs", quiet)
                archive = bench_archive(sample, archive_seconds, jobs, config, Path(workdir))
    if as_json:
        click.echo(json.dumps({"speed": [r.as_dict() for r in results], "fidelity": psnrs,
                               "slide": [asdict(r) for r in slides],
                               "archive": archive.as_dict() if archive else None}, indent=2))
        return
    if archive:
        click.echo(f"archive {archive.seconds:g} s 720p ({archive.frames} frames): whole {archive.whole_s:.1f} s, "
                   f"{ARCHIVE_SEGMENTS} segments {archive.split_s[1]:.1f} s on 1 job: overhead {archive.overhead:.3f}")
        for n, ratio in archive.scaling.items():
            click.echo(f"  jobs {n}: {archive.split_s[n]:6.1f} s, throughput {ratio:.2f}x one job's")
    for row in psnrs:
        sched = row["schedule"]
        click.echo(f"{row['clip']:32} {row['frames']:5d} frames  PSNR out vs in {row['psnr_db']:.2f} dB "
                   f"(crf {config.encode.crf}), {row['psnr_lossless_db']:.2f} dB (lossless encode)")
        click.echo(f"{'':32} scheduled vs every-frame {sched['psnr_db']:.2f} dB (lossless), network on "
                   f"{sched['inferred']:.0%} of frames; still-region flicker {sched['flicker_every']:.3f} "
                   f"(every frame) / {sched['flicker_scheduled']:.3f} (scheduled) levels")
    for r in slides:
        click.echo(f"slide {r.name:26} {r.frames:5d} frames  background PSNR: input {r.psnr_input_db:.2f}, every-frame "
                   f"{r.psnr_every_db:.2f}, scheduled {r.psnr_scheduled_db:.2f} dB "
                   f"({r.psnr_scheduled_db - r.psnr_every_db:+.2f}); network on {r.inferred:.0%} of frames")
    if slides:
        deltas = [r.psnr_scheduled_db - r.psnr_every_db for r in slides]
        click.echo(f"slide: {len(slides)} clips, scheduled - every-frame background PSNR mean "
                   f"{sum(deltas) / len(deltas):+.3f} dB, worst {min(deltas):+.3f} dB")
    if not results:
        return
    click.echo(f"{'size':6} {'transcode':>9} {'every-frame':>11} {'ratio':>5} {'scheduled':>9} {'ratio':>5} "
               f"{'network on':>10} {'PSNR vs every':>13} {'start s':>7} {'peak MB (t/e/s)':>15} {'net ms':>6} "
               f"{'net input':>9}")
    for r in results:
        peaks = f"{r.transcode.peak_mb:.0f}/{r.every_frame.peak_mb:.0f}/{r.clean.peak_mb:.0f}"
        click.echo(f"{r.size:6} {r.transcode.fps:9.1f} {r.every_frame.fps:11.1f} {r.every_frame_ratio:5.2f} "
                   f"{r.clean.fps:9.1f} {r.ratio:5.2f} {r.clean.inferred:10.0%} {r.psnr_vs_every_db:10.2f} dB "
                   f"{r.clean.startup_s:7.1f} {peaks:>15} {r.network_ms:6.1f} {r.network_input:>9}")
    click.echo("ms per frame: " + " ".join(f"{stage:>11}" for stage in STAGES))
    for r in results:
        for label, case in (("every-frame", r.every_frame), ("scheduled", r.clean)):
            cells = " ".join(f"{case.stage_ms[s]:11.2f}" if s in case.stage_ms else f"{'-':>11}" for s in STAGES)
            click.echo(f"{r.size:6} {label:11} {cells}")
    for r in results:
        click.echo(f"{r.size:6} CPU ms per frame (all threads): transcode {r.transcode.cpu_ms:.1f}, every-frame "
                   f"{r.every_frame.cpu_ms:.1f}, scheduled {r.clean.cpu_ms:.1f}: CPU ratio "
                   f"{r.every_frame_cpu_ratio:.2f} / {r.cpu_ratio:.2f}")
    if repeats > 1:
        for size in dict.fromkeys(r.size for r in results):
            rounds = [r for r in results if r.size == size]
            cells = ", ".join(f"{label} {_spread([getattr(r, name) for r in rounds])}" for label, name in (
                ("every-frame", "every_frame_ratio"), ("scheduled", "ratio"), ("CPU ratio scheduled", "cpu_ratio")))
            click.echo(f"{size:6} over {len(rounds)} rounds, median (range): {cells}")
    status("fps exclude 'start s' (Ray start and model load, once per run); ratios are to transcode; PSNR vs "
           "every-frame is at the preset's CRF; peak MB is the driver process's; stage ms are each stage's own "
           "CPU time on its thread, waiting not counted (infer: in-process only, spread over all frames); CPU ms are the driver process's "
           "(its encoder included, Ray actors not), and their ratio, transcode's to clean's, varies less with "
           "other load than the fps ratio", quiet)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
