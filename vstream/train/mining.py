"""Hard clean negatives: the training photos the network changes most although nothing is on them.

Clean blends teach the network to leave a scene alone, but drawn uniformly most of them are
scenes it already leaves alone. What it gets wrong are a few kinds of scene (for shadows: dark
ground, natural shade), and those are what :func:`clean_weights` makes it see more often.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from .network import DualBranchNet


@torch.no_grad()
def clean_changes(model: DualBranchNet, scenes: Iterable[np.ndarray], tolerance: float = 0.0,
                  device: str = "cpu") -> np.ndarray:
    """Mean squared change (in [0, 1] units) the model's output makes to each clean uint8 scene,
    each pixel's change first reduced by ``tolerance`` (as ``vstream clean``'s residual floor)."""
    was_training = model.training
    model.eval()
    changes = []
    for scene in scenes:
        x = torch.from_numpy(scene).to(device).permute(2, 0, 1)[None].float() / 255.0
        change = ((model(x)[0] - x).abs() - tolerance).clamp(min=0)
        changes.append(float((change**2).mean()))
    model.train(was_training)
    return np.array(changes)


def clean_weights(changes: np.ndarray) -> np.ndarray:
    """Sampling probabilities proportional to the change; uniform if the model changes nothing."""
    changes = np.asarray(changes, dtype=np.float64)
    total = changes.sum()
    return changes / total if total > 0 else np.full(len(changes), 1.0 / len(changes))


def below_psnr(changes: np.ndarray, db: float = 38.0) -> int:
    """How many scenes the model changes by more than ``db`` PSNR allows."""
    return int((np.asarray(changes) > 10 ** (-db / 10)).sum())
