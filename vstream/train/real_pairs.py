"""Real training pairs: photos taken through glass and the same view with the glass removed.

Such pairs (Zhang et al. 2018's ``NAME_input.png`` / ``NAME_background.png``, the dorm-room
set's ``NAME_input.jpg`` / ``NAME_background.jpg``, or a reference frame with the background a
multi-frame method recovered, ``NAME_input.png`` / ``NAME_liu2020_background.png``) are only
roughly aligned and their exposure can differ. The sampler moves each ground truth onto its input once,
by phase correlation (a sub-pixel translation), and the loss (:func:`.losses.exposure_tolerant`)
forgives a per-channel gain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

# (input, ground truth): Zhang et al.'s, the dorm-room set's, and reflection_real's reference frames with
# the background a multi-frame method recovered (pseudo ground truth: for training, not headline figures)
LAYOUTS = (("_input.png", "_background.png"), ("_input.jpg", "_background.jpg"), ("_input.png", "_liu2020_background.png"))


@dataclass(frozen=True)
class RealPair:
    """One pair's files. ``name``: ``FOLDER/NAME``, unique across folders."""

    image: Path
    truth: Path

    @property
    def name(self) -> str:
        return f"{self.image.parent.name}/{self.image.name.rsplit('_input', 1)[0]}"


def find_pairs(folder: Path) -> list[RealPair]:
    """Every pair in ``folder``, in the first of :data:`LAYOUTS` it has, sorted by name."""
    for input_suffix, truth_suffix in LAYOUTS:
        pairs = [RealPair(p, p.with_name(p.name[: -len(input_suffix)] + truth_suffix))
                 for p in sorted(Path(folder).glob(f"*{input_suffix}"))]
        pairs = [pair for pair in pairs if pair.truth.is_file()]
        if pairs:
            return pairs
    layouts = ", ".join(f"*{i} with *{t}" for i, t in LAYOUTS)
    raise ValueError(f"no real pairs ({layouts}) in {folder}")


def held_out(names: list[str], count: int) -> list[str]:
    """The ``count`` names with the smallest MD5: a validation split stable whatever else is there."""
    return sorted(sorted(names, key=lambda n: hashlib.md5(n.encode()).hexdigest())[:count])


def split_pairs(folders: list[Path], count: int) -> tuple[list[RealPair], list[RealPair]]:
    """(training, held-out) pairs of ``folders``: of each folder, the ``count`` pairs whose file
    name (``NAME``, not the folder) has the smallest MD5 (:func:`held_out`) are held out."""
    training, validation = [], []
    for folder in folders:
        pairs = find_pairs(folder)
        stems = {pair.name.rsplit("/", 1)[1]: pair for pair in pairs}
        kept_out = set(held_out(list(stems), count))
        training += [pair for stem, pair in stems.items() if stem not in kept_out]
        validation += [pair for stem, pair in stems.items() if stem in kept_out]
    return training, validation


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


def load_pair(pair: RealPair, as_transmitted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(input, aligned ground truth) of one pair, float32 RGB in [0, 1]; ``as_transmitted``: the
    ground truth as the glass lets it through (:func:`transmitted`)."""
    image = _read(pair.image)
    truth = aligned_truth(image, _read(pair.truth))
    return image, transmitted(image, truth) if as_transmitted else truth


class RealPairSampler:
    """Crops ``(input, ground truth)`` of real pairs, at the scale the network meets them.

    Each draw takes a pair, scales it so its long side is in ``long_side`` (``vstream clean``
    shows the network a frame's pyramid top, long side at most 320), flips it half the time and
    cuts a ``crop`` × ``crop`` square. ``as_transmitted``: see :func:`load_pair`.
    """

    def __init__(self, pairs: list[RealPair], crop: int, seed: int,
                 long_side: tuple[int, int] = (224, 320), as_transmitted: bool = False) -> None:
        self.pairs = [load_pair(pair, as_transmitted) for pair in pairs]
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
