"""Real training pairs: photos taken through glass and the same view with the glass removed.

Such pairs (Zhang et al. 2018's ``NAME_input.png`` / ``NAME_background.png``) are only roughly
aligned and their exposure can differ. The sampler moves each ground truth onto its input once,
by phase correlation (a sub-pixel translation), and the loss (:func:`.losses.exposure_tolerant`)
forgives a per-channel gain.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch

INPUT_SUFFIX, TRUTH_SUFFIX = "_input.png", "_background.png"


def pair_names(folder: Path) -> list[str]:
    """Names ``NAME`` of every ``NAME_input.png`` in ``folder`` with its ``NAME_background.png``."""
    names = sorted(p.name[: -len(INPUT_SUFFIX)] for p in Path(folder).glob(f"*{INPUT_SUFFIX}"))
    names = [n for n in names if (Path(folder) / f"{n}{TRUTH_SUFFIX}").is_file()]
    if not names:
        raise ValueError(f"no real pairs (*{INPUT_SUFFIX} with *{TRUTH_SUFFIX}) in {folder}")
    return names


def held_out(names: list[str], count: int) -> list[str]:
    """The ``count`` names with the smallest MD5: a validation split stable whatever else is there."""
    return sorted(sorted(names, key=lambda n: hashlib.md5(n.encode()).hexdigest())[:count])


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def aligned_truth(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``truth`` resized to ``image`` and translated onto it (phase correlation of their greys)."""
    h, w = image.shape[:2]
    if truth.shape[:2] != (h, w):
        truth = cv2.resize(truth, (w, h), interpolation=cv2.INTER_AREA)
    grey = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64) for a in (image, truth)]
    window = cv2.createHanningWindow((w, h), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(grey[1], grey[0], window)
    if max(abs(dx), abs(dy)) > 0.05 * min(h, w):  # a wild answer: keep the pair as it came
        return truth
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(truth, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def transmitted(image: np.ndarray, truth: np.ndarray, quantile: float = 10.0) -> np.ndarray:
    """``truth`` as the glass lets it through: scaled per channel by the gain ``a`` that the
    ``quantile``-th percentile of ``image / truth`` gives (both blurred, where the truth is not
    dark), within [0.3, 1.2].

    A reflection only adds light, so where it is faint the ratio is the glass's transmission
    times the two shots' exposure ratio, and elsewhere higher: a low percentile reads ``a``. (A
    least-squares fit of ``image ≈ a · truth + b`` does not: misalignment biases ``a`` low.)
    The cleaned input should look like ``a · truth``: the glass-free shot at the input's level.
    """
    blurred_image, blurred_truth = (cv2.GaussianBlur(a, (0, 0), 3) for a in (image, truth))
    gains = []
    for c in range(3):
        lit = blurred_truth[..., c] > 0.05
        ratio = blurred_image[..., c][lit] / blurred_truth[..., c][lit]
        gains.append(np.percentile(ratio, quantile) if ratio.size else 1.0)
    return np.clip(truth * np.clip(np.float32(gains), 0.3, 1.2), 0.0, 1.0)


def load_pair(folder: Path, name: str, as_transmitted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(input, aligned ground truth) of one pair, float32 RGB in [0, 1]; ``as_transmitted``: the
    ground truth as the glass lets it through (:func:`transmitted`)."""
    image = _read(Path(folder) / f"{name}{INPUT_SUFFIX}")
    truth = aligned_truth(image, _read(Path(folder) / f"{name}{TRUTH_SUFFIX}"))
    return image, transmitted(image, truth) if as_transmitted else truth


class RealPairSampler:
    """Crops ``(input, ground truth)`` of real pairs, at the scale the network meets them.

    Each draw takes a pair, scales it so its long side is in ``long_side`` (``vstream clean``
    shows the network a frame's pyramid top, long side at most 320), flips it half the time and
    cuts a ``crop`` × ``crop`` square. ``as_transmitted``: see :func:`load_pair`.
    """

    def __init__(self, folder: Path, names: list[str], crop: int, seed: int,
                 long_side: tuple[int, int] = (224, 320), as_transmitted: bool = False) -> None:
        self.pairs = [load_pair(folder, name, as_transmitted) for name in names]
        self.crop, self.long_side = crop, long_side
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        image, truth = self.pairs[self.rng.integers(len(self.pairs))]
        h, w = image.shape[:2]
        scale = max(self.rng.uniform(*self.long_side) / max(h, w), self.crop / min(h, w))
        size = (max(self.crop, round(w * scale)), max(self.crop, round(h * scale)))
        image, truth = (cv2.resize(a, size, interpolation=cv2.INTER_AREA) for a in (image, truth))
        y, x = self.rng.integers(0, size[1] - self.crop + 1), self.rng.integers(0, size[0] - self.crop + 1)
        parts = [a[y : y + self.crop, x : x + self.crop] for a in (image, truth)]
        return tuple(p[:, ::-1] for p in parts) if self.rng.random() < 0.5 else tuple(parts)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(size)]
        return tuple(torch.from_numpy(np.stack(parts)).permute(0, 3, 1, 2).contiguous() for parts in zip(*samples))

    def clean_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clean samples ``(input, background, interference)`` from the glass-free ground truths: a
        real scene seen without glass must come back unchanged."""
        truth = self.batch(size)[1]
        return truth, truth, torch.zeros_like(truth)
