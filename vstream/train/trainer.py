"""The training loop: synthetic blends, four losses, checkpoints, resume, a time limit."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..photos import split_photos
from ..synthesis import params_for
from .data import BlendSampler
from .losses import Discriminator, FeatureExtractor, adversarial_loss, feature_loss, ssim, truncated_pixel
from .mining import below_psnr, clean_changes, clean_weights
from .network import DualBranchNet


def load_train_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(Path(path).read_text())
    for section in ("model", "synthesis", "data", "loss", "optim"):
        if section not in config:
            raise ValueError(f"training config {path} lacks the {section!r} section")
    return config


def build_model(config: dict[str, Any]) -> DualBranchNet:
    return DualBranchNet(**config["model"])


def initial_weights(path: Path) -> dict[str, torch.Tensor]:
    """Network weights to fine-tune from: a training checkpoint (``.pt``) or a shipped model
    (``.onnx``, whose initializers keep the network's parameter names under the export's ``net.``)."""
    if Path(path).suffix != ".onnx":
        return torch.load(path, map_location="cpu", weights_only=False)["model"]
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except DecodeError:
        raise ValueError(f"{path} is not an ONNX model") from None
    return {init.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(init).copy())
            for init in graph.initializer if init.name.startswith("net.")}


def load_initial_weights(model: DualBranchNet, path: Path) -> None:
    """Fine-tune ``model`` from ``path`` (:func:`initial_weights`). Two differences are allowed:
    the result module's own weights (fine-tuning into another result mode starts them fresh or
    drops them), and encoder blocks the checkpoint lacks altogether (a deeper model grown from a
    shallower one: a new block starts as the identity, so the grown model starts as the old one)."""
    weights = initial_weights(path)
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # a weight of another shape
        raise ValueError(f"{path} does not fit the configured network: {str(exc).splitlines()[1].strip()}") from None
    loaded_blocks = {_encoder_block(k) for k in weights}
    new_blocks = [k for k in missing if _encoder_block(k) is not None and _encoder_block(k) not in loaded_blocks]
    foreign = [k for k in missing + unexpected if not k.startswith("result.") and k not in new_blocks]
    if foreign:
        raise ValueError(f"{path} does not fit the configured network ({len(foreign)} weights differ, e.g. {foreign[0]})")


def _encoder_block(key: str) -> str | None:
    """``encoder.stages.S.B`` for a weight of an encoder block, None for any other weight."""
    parts = key.split(".")
    return ".".join(parts[:4]) if parts[:2] == ["encoder", "stages"] else None


def lr_factor(progress: float) -> float:
    """Linear warm-up over the first 5% of training, then cosine down to 2%.

    ``progress`` in [0, 1] is the larger of steps done and time used (with a time limit), so the
    schedule still anneals when a busy machine stops training early.
    """
    if progress < 0.05:
        return (progress + 1e-3) / 0.05
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - 0.05) / 0.95)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


@dataclass
class Validation:
    """Fixed synthetic blends from held-out photos, and the identity baseline on them.

    ``score`` gives the PSNR of the result module's output, of ``input - interference`` (the
    "subtract" alternative) and, on the clean samples only, of the output against its own input.
    """

    inputs: torch.Tensor
    backgrounds: torch.Tensor

    @property
    def identity_psnr(self) -> float:
        return psnr(self.inputs, self.backgrounds)

    @torch.no_grad()
    def score(self, model: DualBranchNet) -> dict[str, float]:
        model.eval()
        outputs, subtracted = [], []
        for start in range(0, len(self.inputs), 16):
            x = self.inputs[start : start + 16]
            output, _, interference = model(x)
            outputs.append(output)
            subtracted.append((x - interference).clamp(0, 1))
        model.train()
        outputs = torch.cat(outputs)
        clean = (self.inputs == self.backgrounds).flatten(1).all(1)  # samples with no interference
        return {"psnr": psnr(outputs, self.backgrounds),
                "psnr_subtract": psnr(torch.cat(subtracted), self.backgrounds),
                "psnr_clean": psnr(outputs[clean], self.backgrounds[clean]) if clean.any() else float("nan")}


def train(config_path: Path, data: Path, out: Path, *, resume: bool = False, device: str = "cpu",
          max_minutes: float | None = None, init: Path | None = None, quiet: bool = False) -> Path:
    """Train; return the path of the best checkpoint (by validation PSNR).

    ``init``: start from this checkpoint's network weights (fine-tuning, e.g. a new kind from the
    reflection model) with fresh optimisers; ignored when resuming.
    """
    config = load_train_config(config_path)
    seed = int(config.get("seed", 0))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    crop, scene, kind = config["data"]["crop"], config["data"].get("scene"), config.get("kind", "reflection")
    params = params_for(kind, config["synthesis"])
    train_paths, val_paths = split_photos(data, config["data"]["val_percent"])
    sampler = BlendSampler(train_paths, kind, params, crop, seed, scene, config["data"].get("hard_clean", 0.0))
    mine_every = int(config["data"].get("mine_every", 1000))
    val_inputs, val_backgrounds, _ = BlendSampler(val_paths, kind, params, crop, seed + 1, scene).batch(config["data"]["val_samples"])
    validation = Validation(val_inputs.to(device), val_backgrounds.to(device))

    model = build_model(config).to(device)
    critic = Discriminator().to(device)
    loss_cfg, optim_cfg = config["loss"], config["optim"]
    extractor = FeatureExtractor(loss_cfg.get("vgg19_weights"), loss_cfg.get("feature_width_divisor", 4)).to(device)
    opt_g = torch.optim.AdamW(model.parameters(), lr=optim_cfg["lr"], weight_decay=0.0)
    opt_d = torch.optim.AdamW(critic.parameters(), lr=optim_cfg["lr"] / 2, betas=(0.5, 0.999))
    steps = int(optim_cfg["steps"])
    state = {"step": 0, "best": -1.0, "history": [], "seconds": 0.0, "init": str(init) if init else None}
    last, best = out / "last.pt", out / "best.pt"
    if init is not None and not (resume and last.is_file()):
        load_initial_weights(model, init)
    if resume and last.is_file():
        checkpoint = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(checkpoint["model"])
        critic.load_state_dict(checkpoint["critic"])
        opt_g.load_state_dict(checkpoint["opt_g"])
        opt_d.load_state_dict(checkpoint["opt_d"])
        state = checkpoint["state"]
        sampler.rng = np.random.default_rng(seed + state["step"])

    def mine() -> None:
        """Re-weigh the hard clean samples by what the model changes now; log how many of the
        training photos it changes below 38 dB."""
        changes = clean_changes(model, sampler.whole_scenes(), loss_cfg["pixel_threshold"], device)
        sampler.clean_weights = clean_weights(changes)
        state.setdefault("mining", []).append({"step": state["step"], "below_38db": below_psnr(changes)})

    def save(path: Path) -> None:
        torch.save({"model": model.state_dict(), "critic": critic.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "state": state,
                    "config": config, "feature_source": extractor.source}, path)

    started = time.monotonic() - state["seconds"]
    budget_s = None if max_minutes is None else max_minutes * 60
    session_start = time.monotonic()
    pixel = {"threshold": loss_cfg["pixel_threshold"], "power": loss_cfg.get("pixel_power", 1)}
    bar = tqdm(total=steps, initial=state["step"], disable=quiet, dynamic_ncols=True, desc="train")
    while True:
        progress = state["step"] / steps
        if budget_s is not None:
            progress = max(progress, (time.monotonic() - session_start) / budget_s)
        if progress >= 1.0:
            break
        for group in opt_g.param_groups:
            group["lr"] = optim_cfg["lr"] * lr_factor(progress)
        if sampler.hard_clean and (sampler.clean_weights is None or state["step"] % mine_every == 0):
            mine()
        x, background, interference = (t.to(device) for t in sampler.batch(optim_cfg["batch"]))
        output, _, predicted_interference = model(x)
        loss = (loss_cfg["background"] * truncated_pixel(output, background, **pixel)
                + loss_cfg["interference"] * truncated_pixel(predicted_interference, interference, **pixel)
                + loss_cfg["ssim"] * (1 - ssim(output, background)))
        if loss_cfg["feature"]:  # the costliest loss (60% of a CPU step): a weight of 0 skips it
            loss = loss + loss_cfg["feature"] * feature_loss(extractor, output, background)
        adversarial_on = bool(loss_cfg["adversarial"]) and state["step"] >= loss_cfg["adversarial_after"]
        if adversarial_on:
            loss = loss + loss_cfg["adversarial"] * adversarial_loss(critic(output), real=True)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt_g.step()
        if adversarial_on:
            d_loss = adversarial_loss(critic(background), True) + adversarial_loss(critic(output.detach()), False)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        state["step"] += 1
        bar.update(1)
        if state["step"] % optim_cfg["eval_every"] == 0:
            scores = validation.score(model)
            state["seconds"] = time.monotonic() - started
            state["history"].append({"step": state["step"], "loss": float(loss.detach()), **scores, "seconds": state["seconds"]})
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", val=f"{scores['psnr']:.2f}dB", id=f"{validation.identity_psnr:.2f}dB")
            if scores["psnr"] > state["best"]:
                state["best"] = scores["psnr"]
                save(best)
            save(last)
    bar.close()
    if sampler.hard_clean:
        mine()
    scores = validation.score(model)
    state["seconds"] = time.monotonic() - started
    state["identity_psnr"] = validation.identity_psnr
    state["history"].append({"step": state["step"], **scores, "seconds": state["seconds"]})
    if scores["psnr"] > state["best"]:
        state["best"] = scores["psnr"]
        save(best)
    save(last)
    return best
