"""``vstream train``, ``vstream export`` and ``vstream synth``: the training side (torch extra)."""

from __future__ import annotations

from pathlib import Path

import click

from ..model_contract import KINDS
from .common import quiet_option, setup_logging, status


def _torch_side():
    """Import the training package, or fail with the install command."""
    try:
        from .. import train
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    return train


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training recipe, e.g. configs/train/reflection.yaml.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of photos to synthesise blends from (a validation split is held out by name hash).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Checkpoint folder.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--max-minutes", type=click.FloatRange(min=0.1), help="Stop (and checkpoint) after this long.")
@quiet_option
def train_command(config_path, data, out, resume, device, max_minutes, quiet) -> None:
    """Train the dual-branch network on synthetic blends; checkpoints to OUT/last.pt and best.pt."""
    setup_logging(quiet, False)
    _torch_side()
    from ..train.trainer import train

    try:
        best = train(config_path, data, out, resume=resume, device=device, max_minutes=max_minutes, quiet=quiet)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(f"bad training setup: {exc}") from None
    status(f"best checkpoint: {best}", quiet)


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "model_version", default="1", show_default=True, help="Written into the model's metadata.")
@quiet_option
def export_command(checkpoint, output, model_version, quiet) -> None:
    """Export CHECKPOINT to ONNX (opset 17, dynamic N/H/W) and check it against PyTorch."""
    import pickle

    setup_logging(quiet, False)
    _torch_side()
    from ..train.export import export_onnx, load_checkpoint, parity

    try:
        model, saved = load_checkpoint(checkpoint)
    except (KeyError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise click.ClickException(f"not a vstream checkpoint: {checkpoint} ({str(exc).splitlines()[0]})") from None
    export_onnx(model, output, saved["config"].get("kind", "reflection"), model_version, saved["config"])
    worst = parity(model, output)
    status(f"wrote {output}; max |torch - onnxruntime| = {worst:.2e} at 3 sizes", quiet)
    if worst > 1e-4:
        raise click.ClickException(f"ONNX output differs from PyTorch by {worst:.2e} (> 1e-4)")


@click.command("synth")
@click.option("--kind", type=click.Choice(KINDS), default="reflection", show_default=True)
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of photos.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Sheet image (png/jpg).")
@click.option("--n", "rows", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--size", type=click.IntRange(32, 1024), default=192, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def synth_command(kind, data, out, rows, size, seed) -> None:
    """A picture sheet of synthetic samples: input | background | interference, one per row."""
    import cv2
    import numpy as np

    from ..decode import is_image
    from ..synthesis import RECIPES, SynthesisParams, synthesize

    if kind not in RECIPES:
        raise click.ClickException(f"no synthesis recipe for {kind!r} yet; have {', '.join(sorted(RECIPES))}")
    photos = sorted(p for p in data.rglob("*") if is_image(p))
    if len(photos) < 2:
        raise click.ClickException(f"need at least 2 photos in {data}")
    rng = np.random.default_rng(seed)
    params = SynthesisParams(clean_fraction=0.0)
    sheet = []
    for _ in range(rows):
        a, b = (_square_rgb(photos[i], size) for i in rng.choice(len(photos), 2, replace=False))
        blended, background, interference = synthesize(kind, a, b, rng, params)
        sheet.append(np.hstack([blended, background, np.clip(interference * 2, 0, 1)]))
    image = (np.vstack(sheet) * 255 + 0.5).astype(np.uint8)
    if not cv2.imwrite(str(out), image[..., ::-1]):
        raise click.ClickException(f"cannot write {out}")
    click.echo(f"wrote {out} ({rows} samples; interference shown x2)", err=True)


def _square_rgb(path: Path, size: int):
    """``path`` as ``(size, size, 3)`` uint8 RGB; a click error when it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise click.ClickException(f"cannot read image {path}")
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1]
