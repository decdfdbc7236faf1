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
        name: what errors call a model given as bytes (its file's name).
        threads: ORT intra-op threads. Set explicitly: ORT otherwise takes every core per session.
        providers: ORT execution providers, most preferred first.
    """

    def __init__(
        self, model: str | Path | bytes, threads: int = 1, providers: list[str] | None = None, name: str | None = None
    ) -> None:
        import onnxruntime as ort

        if isinstance(model, bytes):
            source, name = model, name or "<model bytes>"
        else:
            source = name = str(model_file(model))
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
        self.name = name
        self._check_contract()
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get(mc.META_KIND, "unknown")
        self.size_multiple = self._size_multiple(meta)
        self._check_output_size()
        log.info("model %s (%s) on %s", name, self.kind, self.session.get_providers())

    def _check_contract(self) -> None:
        """The names, ranks, sizes and types of the model's input and outputs (model_contract.py)."""
        inputs = self.session.get_inputs()
        outputs = {o.name: o for o in self.session.get_outputs()}
        if [i.name for i in inputs] != [mc.INPUT_NAME] or not set(mc.OUTPUT_NAMES) <= set(outputs):
            raise ModelMismatchError(
                f"{self.name} is not a vstream model: expected input {mc.INPUT_NAME!r} and outputs "
                f"{list(mc.OUTPUT_NAMES)}, got inputs {[i.name for i in inputs]} "
                f"and outputs {sorted(outputs)}"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] != 3:
            raise ModelMismatchError(f"model {self.name} expects (N, 3, H, W) input, got {shape}")
        if any(isinstance(side, int) for side in shape[2:]):
            raise ModelMismatchError(
                f"model {self.name} takes only {shape[2]}x{shape[3]} images; a vstream model takes any "
                "size (export it with dynamic H and W)"
            )
        for tensor in (inputs[0], *(outputs[n] for n in mc.OUTPUT_NAMES)):
            if tensor.type != "tensor(float)":
                raise ModelMismatchError(f"model {self.name}'s {tensor.name!r} is {tensor.type}; "
                                         "a vstream model's input and outputs are float32")

    def _size_multiple(self, meta: dict[str, str]) -> int:
        text = meta.get(mc.META_SIZE_MULTIPLE, str(mc.SIZE_MULTIPLE))
        if not text.isdecimal() or int(text) < 1:
            raise ModelMismatchError(
                f"model {self.name}'s metadata {mc.META_SIZE_MULTIPLE} must be a whole number of 1 or more, got {text!r}"
            )
        return int(text)

    def _check_output_size(self) -> None:
        """Run the model once on a small picture: its outputs must be the input's size."""
        side = -(-32 // self.size_multiple) * self.size_multiple
        x = np.zeros((1, 3, side, side), np.float32)
        try:
            results = self.session.run(list(mc.OUTPUT_NAMES), {mc.INPUT_NAME: x})
        except Exception as exc:  # ORT's own untyped errors
            raise ModelError(f"model {self.name} fails on a {side}x{side} image: {_first_line(exc)}") from None
        for output, result in zip(mc.OUTPUT_NAMES, results):
            if result.shape != x.shape:
                raise ModelMismatchError(
                    f"model {self.name} returns {output!r} of shape {list(result.shape)} for input "
                    f"{list(x.shape)}; a vstream model returns the input's shape"
                )

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
        if not np.isfinite(bg).all():  # cleaned with, it would make a white (or black) picture
            raise ModelError(f"model {self.name} returned NaN or infinite values for a {w}x{h} image")
        return bg[0, :, :h, :w].transpose(1, 2, 0)

    def residual(self, rgb: np.ndarray) -> np.ndarray:
        """What the model removes from one uint8 RGB image: ``input - background``.

        Returns ``(H, W, 3)`` float32 in [-1, 1]; subtracting it (scaled to 0..255) cleans the image.
        """
        return rgb.astype(np.float32) * (1.0 / 255.0) - self.background(rgb)


def model_file(path: str | Path) -> Path:
    """``path`` if it is a file, else a :class:`ModelError` that says what it is."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"model {path} is a folder, not an ONNX file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
