"""The training loop: synthetic blends, four losses, checkpoints, resume, a time limit."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..evaluation.photos import split_photos
from ..synthesis import params_for
from .data import BlendSampler
from .losses import (Discriminator, FeatureExtractor, adversarial_loss, exposure_tolerant, feature_loss, level_change,
                     ssim, truncated_pixel)
from .mining import below_psnr, clean_changes, clean_weights
from .network import DualBranchNet, PretrainedDualBranchNet
from .real_pairs import RealPair, RealPairSampler, load_pair, split_pairs
from .vgg import VGG16FeatureLoss

Network = DualBranchNet | PretrainedDualBranchNet


def load_train_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(Path(path).read_text())
    for section in ("model", "synthesis", "data", "loss", "optim"):
        if section not in config:
            raise ValueError(f"training config {path} lacks the {section!r} section")
    return config


def build_model(config: dict[str, Any]) -> Network:
    """The configured network: with ``model.encoder`` the pretrained-encoder one, else the original."""
    model = config["model"]
    return PretrainedDualBranchNet(**model) if "encoder" in model else DualBranchNet(**model)


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


def load_initial_weights(model: Network, path: Path) -> None:
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


def clean_samples(inputs: torch.Tensor, backgrounds: torch.Tensor) -> torch.Tensor:
    """Which samples carry no interference (their label is the input itself): a ``(B,)`` mask."""
    return (inputs == backgrounds).flatten(1).all(1)


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
    def score(self, model: Network) -> dict[str, float]:
        model.eval()
        outputs, subtracted = [], []
        for start in range(0, len(self.inputs), 16):
            x = self.inputs[start : start + 16]
            output, _, interference = model(x)
            outputs.append(output)
            subtracted.append((x - interference).clamp(0, 1))
        model.train()
        outputs = torch.cat(outputs)
        clean = clean_samples(self.inputs, self.backgrounds)
        return {"psnr": psnr(outputs, self.backgrounds),
                "psnr_subtract": psnr(torch.cat(subtracted), self.backgrounds),
                "psnr_clean": psnr(outputs[clean], self.backgrounds[clean]) if clean.any() else float("nan")}


class RealValidation:
    """The held-out real pairs, whole, at long side ``side`` (sides cut to the network's multiple):
    mean PSNR of the output and of the input (identity) against the aligned ground truth."""

    def __init__(self, pairs: list[RealPair], multiple: int, side: int = 256) -> None:
        self.pairs = []
        for pair in pairs:
            image, truth = load_pair(pair)
            scale = side / max(image.shape[:2])
            h, w = (max(multiple, round(n * scale) // multiple * multiple) for n in image.shape[:2])
            self.pairs.append(tuple(torch.from_numpy(cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA))
                                    .permute(2, 0, 1)[None].contiguous() for a in (image, truth)))
        self.identity_psnr = float(np.mean([psnr(x, t) for x, t in self.pairs]))

    @torch.no_grad()
    def score(self, model: Network) -> float:
        model.eval()
        device = next(model.parameters()).device
        value = float(np.mean([psnr(model(x.to(device))[0].cpu(), t) for x, t in self.pairs]))
        model.train()
        return value


class _SubstituteFeatureLoss(torch.nn.Module):
    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.extractor, self.source = extractor, extractor.source

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return feature_loss(self.extractor, pred, target)


def feature_loss_for(loss_cfg: dict[str, Any], vgg16: Path | None) -> torch.nn.Module:
    """The feature loss the config asks for: ImageNet VGG16 (``loss.feature_net: vgg16``, weights
    from ``vgg16``) or the random-weight VGG19 substitute of the earlier models."""
    if loss_cfg.get("feature_net", "vgg19_substitute") == "vgg16":
        if vgg16 is None:
            raise ValueError("loss.feature_net is vgg16: give its weights with --vgg16 PATH")
        return VGG16FeatureLoss(vgg16, tuple(loss_cfg.get("feature_taps", ("relu1_2", "relu2_2", "relu3_3"))),
                                int(loss_cfg.get("feature_downscale", 1)))
    return _SubstituteFeatureLoss(FeatureExtractor(loss_cfg.get("vgg19_weights"), loss_cfg.get("feature_width_divisor", 4)))


def train(config_path: Path, data: Path, out: Path, *, resume: bool = False, device: str = "cpu",
          max_minutes: float | None = None, init: Path | None = None, real: list[Path] | None = None,
          vgg16: Path | None = None, quiet: bool = False) -> Path:
    """Train; return the path of the best checkpoint (by validation PSNR).

    ``init``: start from this checkpoint's network weights (fine-tuning, e.g. a new kind from the
    reflection model) with fresh optimisers; ignored when resuming. ``real``: folders of real
    pairs (:mod:`.real_pairs`): a share ``data.real_fraction`` of every batch, and a share
    ``data.real_clean`` of clean views of their ground truths; ``data.real_val`` of each folder
    held out. ``vgg16``: the weights of ``loss.feature_net: vgg16`` (:mod:`.vgg`).
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

    real_fraction = float(config["data"].get("real_fraction", 0.0))
    real_clean = float(config["data"].get("real_clean", 0.0))  # clean views of the real ground truths
    real_target = config["data"].get("real_target", "as_shot")
    if real_target not in ("as_shot", "transmitted"):
        raise ValueError(f"data.real_target must be as_shot or transmitted, got {real_target!r}")
    as_transmitted = real_target == "transmitted"
    real_sampler = real_validation = None
    if real_fraction or real_clean:
        if not real:
            raise ValueError("data.real_fraction or data.real_clean is set: give the real pairs with --real FOLDER")
        train_pairs, val_pairs = split_pairs(list(real), int(config["data"].get("real_val", 10)))
        real_sampler = RealPairSampler(train_pairs, crop, seed + 2, as_transmitted=as_transmitted)

    model = build_model(config).to(device)
    if real_sampler:
        real_validation = RealValidation(val_pairs, model.size_multiple)
    critic = Discriminator().to(device)
    loss_cfg, optim_cfg = config["loss"], config["optim"]
    features = feature_loss_for(loss_cfg, vgg16).to(device)
    encoder_lr = float(optim_cfg.get("encoder_lr_scale", 1.0))
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in encoder_ids], "scale": 1.0},
              {"params": list(model.encoder.parameters()), "scale": encoder_lr}]
    opt_g = torch.optim.AdamW(groups, lr=optim_cfg["lr"], weight_decay=0.0)
    opt_d = torch.optim.AdamW(critic.parameters(), lr=optim_cfg["lr"] / 2, betas=(0.5, 0.999))
    steps = int(optim_cfg["steps"])
    state = {"step": 0, "best": -1.0, "history": [], "seconds": 0.0, "init": str(init) if init else None}
    last, best = out / "last.pt", out / "best.pt"
    fresh = not (resume and last.is_file())
    if init is not None and fresh:
        load_initial_weights(model, init)
    elif fresh and config.get("init") == "imagenet":
        state["init"] = model.encoder.load_imagenet()
    if real_sampler:
        state["real_val"] = [pair.name for pair in val_pairs]
    if resume and last.is_file():
        checkpoint = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(checkpoint["model"])
        critic.load_state_dict(checkpoint["critic"])
        opt_g.load_state_dict(checkpoint["opt_g"])
        opt_d.load_state_dict(checkpoint["opt_d"])
        state = checkpoint["state"]
        sampler.rng = np.random.default_rng(seed + state["step"])
        if real_sampler:
            real_sampler.rng = np.random.default_rng(seed + 2 + state["step"])

    def mine() -> None:
        """Re-weigh the hard clean samples by what the model changes now; log how many of the
        training photos it changes below 38 dB."""
        changes = clean_changes(model, sampler.whole_scenes(model.size_multiple), loss_cfg["pixel_threshold"], device)
        sampler.clean_weights = clean_weights(changes)
        state.setdefault("mining", []).append({"step": state["step"], "below_38db": below_psnr(changes)})

    def save(path: Path) -> None:
        torch.save({"model": model.state_dict(), "critic": critic.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "state": state,
                    "config": config, "feature_source": features.source}, path)

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
            group["lr"] = optim_cfg["lr"] * lr_factor(progress) * group["scale"]
        model.encoder.requires_grad_(state["step"] >= optim_cfg.get("freeze_encoder_steps", 0))
        if sampler.hard_clean and (sampler.clean_weights is None or state["step"] % mine_every == 0):
            mine()
        n_real = round(optim_cfg["batch"] * real_fraction)
        n_real_clean = round(optim_cfg["batch"] * real_clean)
        x, background, interference = sampler.batch(optim_cfg["batch"] - n_real - n_real_clean)
        if n_real_clean:
            x, background, interference = (torch.cat(pair) for pair in zip((x, background, interference),
                                                                             real_sampler.clean_batch(n_real_clean)))
        x, background, interference = x.to(device), background.to(device), interference.to(device)
        n_synthetic = len(x)
        if n_real:
            real_x, real_truth = (t.to(device) for t in real_sampler.batch(n_real))
            x = torch.cat([x, real_x])
        output, _, predicted_interference = model(x)
        synthetic = output[:n_synthetic]
        loss = (loss_cfg["background"] * truncated_pixel(synthetic, background, **pixel)
                + loss_cfg["interference"] * truncated_pixel(predicted_interference[:n_synthetic], interference, **pixel)
                + loss_cfg["ssim"] * (1 - ssim(synthetic, background)))
        if loss_cfg.get("clean_level"):
            clean = clean_samples(x[:n_synthetic], background)
            if clean.any():
                loss = loss + loss_cfg["clean_level"] * level_change(synthetic[clean], background[clean],
                                                                     int(loss_cfg.get("clean_level_pool", 16)))
        if loss_cfg["feature"]:  # the costliest loss (60% of a CPU step): a weight of 0 skips it
            loss = loss + loss_cfg["feature"] * features(synthetic, background)
        if n_real:
            real_output = output[n_synthetic:]
            loss = loss + loss_cfg.get("real", 1.0) * exposure_tolerant(real_output, real_truth, fit_gain=not as_transmitted)
            if loss_cfg["feature"]:
                loss = loss + loss_cfg.get("real_feature", loss_cfg["feature"]) * features(real_output, real_truth)
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
            if real_validation:
                scores["real_psnr"] = real_validation.score(model)
            state["seconds"] = time.monotonic() - started
            state["history"].append({"step": state["step"], "loss": float(loss.detach()), **scores, "seconds": state["seconds"]})
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", val=f"{scores['psnr']:.2f}dB", id=f"{validation.identity_psnr:.2f}dB",
                            **({"real": f"{scores['real_psnr']:.2f}dB", "real_id": f"{real_validation.identity_psnr:.2f}dB"}
                               if real_validation else {}))
            if scores["psnr"] > state["best"]:
                state["best"] = scores["psnr"]
                save(best)
            save(last)
    bar.close()
    if sampler.hard_clean:
        mine()
    scores = validation.score(model)
    if real_validation:
        scores["real_psnr"] = real_validation.score(model)
        state["real_identity_psnr"] = real_validation.identity_psnr
    state["seconds"] = time.monotonic() - started
    state["identity_psnr"] = validation.identity_psnr
    state["history"].append({"step": state["step"], **scores, "seconds": state["seconds"]})
    if scores["psnr"] > state["best"]:
        state["best"] = scores["psnr"]
        save(best)
    save(last)
    return best
