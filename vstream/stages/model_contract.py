"""The ONNX model contract shared by the exporter (training side) and the runtime.

A vstream model is an ONNX graph with:

- input ``"input"``: ``(N, 3, H, W)`` float32 RGB in ``[0, 1]``; N, H and W are dynamic,
  H and W must be multiples of the model's :data:`META_SIZE_MULTIPLE` (:data:`SIZE_MULTIPLE`
  if absent; the runtime pads and crops);
- output ``"background"``: ``(N, 3, H, W)`` float32 in ``[0, 1]``, the cleaned image formed by
  the result module from both decoders;
- output ``"interference"``: ``(N, 3, H, W)`` float32 in ``[-1, 1]``, decoder 2's interference
  layer (reflection, shadow, water-stain or occlusion map) as the signed difference it makes,
  ``input - background``: positive for a reflection, negative for a shadow.

Metadata (``onnx`` ``metadata_props``) carries :data:`META_KIND`, :data:`META_VERSION`,
:data:`META_SIZE_MULTIPLE` and :data:`META_CONFIG_HASH`.
"""

from __future__ import annotations

INPUT_NAME = "input"
OUTPUT_BACKGROUND = "background"
OUTPUT_INTERFERENCE = "interference"
OUTPUT_NAMES = (OUTPUT_BACKGROUND, OUTPUT_INTERFERENCE)

SIZE_MULTIPLE = 8
OPSET = 17

META_KIND = "vstream.kind"
META_VERSION = "vstream.model_version"
META_SIZE_MULTIPLE = "vstream.size_multiple"
META_CONFIG_HASH = "vstream.config_hash"

KINDS = ("reflection", "shadow", "water", "occlusion")
