"""ONNX Runtime wrapper for a vstream model: image in, interference residual out. No Ray here."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelMismatchError, ProviderError
from . import model_contract as mc

log = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def providers_for(device: str) -> list[str]:
    """ORT provider list for ``device`` ("cpu" or "cuda"); raises ProviderError if unavailable."""
    import onnxruntime as ort

    if device not in PROVIDERS:
        raise ProviderError(f"unknown device {device!r}; expected one of {', '.join(PROVIDERS)}")
    wanted = PROVIDERS[device]
    if wanted not in ort.get_available_providers():
        raise ProviderError(
            f"device {device!r} needs ONNX Runtime's {wanted}, which this install lacks "
            "(for CUDA: pip uninstall onnxruntime && pip install onnxruntime-gpu)"
        )
    return [wanted, "CPUExecutionProvider"] if device != "cpu" else [wanted]


class InterferenceModel:
    """One ONNX Runtime session of a dual-decoder vstream model.

    Args:
        model: the ``.onnx`` file, or its bytes (how Ray actors receive it).
        threads: ORT intra-op threads. Set explicitly: ORT otherwise takes every core per session.
        providers: ORT execution providers, most preferred first.
    """

    def __init__(
        self, model: str | Path | bytes, threads: int = 1, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        if isinstance(model, bytes):
            source, name = model, "<model bytes>"
        else:
            path = Path(model)
            if not path.is_file():
                raise ModelError(f"model file not found: {path}")
            source, name = str(path), str(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                source, sess_options=options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped Fail/InvalidGraph errors
            raise ModelError(f"cannot load model {name}: {_first_line(exc)}") from None
        self._check_contract(name)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get(mc.META_KIND, "unknown")
        self.size_multiple = int(meta.get(mc.META_SIZE_MULTIPLE, mc.SIZE_MULTIPLE))
        log.info("model %s (%s) on %s", name, self.kind, self.session.get_providers())

    def _check_contract(self, name: str) -> None:
        inputs = self.session.get_inputs()
        outputs = {o.name for o in self.session.get_outputs()}
        if [i.name for i in inputs] != [mc.INPUT_NAME] or not set(mc.OUTPUT_NAMES) <= outputs:
            raise ModelMismatchError(
                f"{name} is not a vstream model: expected input {mc.INPUT_NAME!r} and outputs "
                f"{list(mc.OUTPUT_NAMES)}, got inputs {[i.name for i in inputs]} "
                f"and outputs {sorted(outputs)}"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] != 3:
            raise ModelMismatchError(f"model expects (N, 3, H, W) input, got {shape}")

    def background(self, rgb: np.ndarray) -> np.ndarray:
        """Cleaned image of one ``(H, W, 3)`` uint8 RGB image, as ``(H, W, 3)`` float32 in [0, 1]."""
        h, w = rgb.shape[:2]
        m = self.size_multiple
        pad_h, pad_w = -h % m, -w % m
        x = rgb.astype(np.float32) * (1.0 / 255.0)
        if pad_h or pad_w:
            x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if min(h, w) > m else "edge")
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        (bg,) = self.session.run([mc.OUTPUT_BACKGROUND], {mc.INPUT_NAME: x})
        return bg[0, :, :h, :w].transpose(1, 2, 0)

    def residual(self, rgb: np.ndarray) -> np.ndarray:
        """What the model removes from one uint8 RGB image: ``input - background``.

        Returns ``(H, W, 3)`` float32 in [-1, 1]; subtracting it (scaled to 0..255) cleans the image.
        """
        return rgb.astype(np.float32) * (1.0 / 255.0) - self.background(rgb)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
