"""Synthetic training samples (claims 10-12): an original photo with an interference layer added.

Numpy/OpenCV only, so the runtime (``vstream synth``) can use it without torch. One recipe per
kind of claim 3 — reflection, shadow, water, occlusion — each with its own parameters; every
recipe returns ``(input, background, interference)``, all ``(H, W, 3)`` float32 in [0, 1], with
``input == background + interference`` exactly: the interference label is the layer as it
survives clipping, additive for every kind so the network's second decoder and the pipeline's
residual mean the same thing whatever the kind.
"""

from . import occlusion, reflection, shadow, water  # noqa: F401  (registers the recipes)
from .base import RECIPES, SynthesisParams, params_for, synthesize
from .regions import feathered_mask

__all__ = ["RECIPES", "SynthesisParams", "feathered_mask", "params_for", "synthesize"]
