"""The recipe registry, the parameters every recipe shares, and :func:`synthesize`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]
Recipe = Callable[[np.ndarray, np.ndarray, np.random.Generator, Any], np.ndarray]
LookAlike = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class SynthesisParams:
    """What every recipe shares. Ranges are (low, high), drawn uniformly per sample.

    ``clean_fraction``: share of samples with no interference at all (teaches "leave it alone").
    ``strength``: peak opacity (or depth) of the layer.
    ``lookalikes``: share of samples whose photo first gets scene content that looks like the
    kind's interference and belongs to the scene (kinds registered with one: :mod:`.lookalikes`).
    """

    clean_fraction: float = 0.15
    strength: tuple[float, float] = (0.15, 0.6)
    lookalikes: float = 0.0


@dataclass(frozen=True)
class _Entry:
    recipe: Recipe
    params: type[SynthesisParams]
    lookalike: LookAlike | None


RECIPES: dict[str, _Entry] = {}


def register(kind: str, params: type[SynthesisParams],
             lookalike: LookAlike | None = None) -> Callable[[Recipe], Recipe]:
    """Register ``recipe(background, reference, rng, params) -> input`` for ``kind``, and the
    painter of its look-alikes, ``lookalike(background, rng) -> background``, if it has one.

    ``background`` and ``reference`` arrive as float32 in [0, 1], same size; the recipe returns
    the composited input (clipping and the interference label are done here, once).
    """

    def wrap(recipe: Recipe) -> Recipe:
        RECIPES[kind] = _Entry(recipe, params, lookalike)
        return recipe

    return wrap


def params_for(kind: str, values: Mapping[str, Any] | None = None) -> SynthesisParams:
    """``kind``'s parameters from a config mapping (YAML lists become ranges); unknown keys are
    named in the error."""
    entry = _entry(kind)
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(entry.params)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {kind} synthesis parameter(s) {', '.join(unknown)}; have {', '.join(sorted(known))}")
    _check_lookalikes(kind, entry, values.get("lookalikes"))
    return entry.params(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def synthesize(kind: str, original: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
               params: SynthesisParams | None = None) -> Sample:
    """One sample of ``kind`` from two same-size uint8 or float images; deterministic for ``rng``.

    ``params`` defaults to the kind's own defaults.
    """
    entry = _entry(kind)
    params = params if params is not None else entry.params()
    _check_lookalikes(kind, entry, params.lookalikes)
    background = _as_float(original)
    if params.lookalikes and rng.random() < params.lookalikes:  # no draw at 0: earlier seeds, same samples
        background = entry.lookalike(background, rng)
    if rng.random() < params.clean_fraction:
        return clean_sample(background)
    blended = np.clip(entry.recipe(background, _as_float(reference), rng, params), 0.0, 1.0).astype(np.float32)
    return blended, background, blended - background


def clean_sample(original: np.ndarray) -> Sample:
    """A sample with no interference: input and background are ``original``, the layer is zero."""
    background = _as_float(original)
    return background.copy(), background, np.zeros_like(background)


def _check_lookalikes(kind: str, entry: _Entry, share: float | None) -> None:
    if share and entry.lookalike is None:
        raise ValueError(f"{kind} has no look-alikes; lookalikes must be 0")


def _entry(kind: str) -> _Entry:
    if kind not in RECIPES:
        raise ValueError(f"no synthesis recipe for {kind!r}; have {', '.join(sorted(RECIPES))}")
    return RECIPES[kind]


def _as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
