"""Export a checkpoint to the ONNX model contract (:mod:`vstream.stages.model_contract`)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..stages import model_contract as mc
from .trainer import Network, build_model


class _ContractView(nn.Module):
    """The network as the runtime sees it: ``input`` → (``background``, ``interference``)."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output, _, interference = self.net(x)
        return output, interference


def load_checkpoint(path: Path) -> tuple[Network, dict]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def export_onnx(model: Network, out: Path, kind: str, version: str, config: dict) -> Path:
    """Write ``model`` as ONNX (opset :data:`~vstream.stages.model_contract.OPSET`, dynamic N/H/W)."""
    import onnx

    dims = {0: "N", 2: "H", 3: "W"}
    example = torch.rand(1, 3, 64, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            _ContractView(model.eval()), example, str(out), input_names=[mc.INPUT_NAME],
            output_names=list(mc.OUTPUT_NAMES), opset_version=mc.OPSET, dynamo=False,
            dynamic_axes={mc.INPUT_NAME: dims, **{name: dims for name in mc.OUTPUT_NAMES}},
        )
    graph = onnx.load(str(out))
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    props = {mc.META_KIND: kind, mc.META_VERSION: version, mc.META_SIZE_MULTIPLE: str(model.size_multiple),
             mc.META_CONFIG_HASH: config_hash}
    del graph.metadata_props[:]
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(out))
    return out


def parity(model: Network, onnx_path: Path, sizes: tuple[tuple[int, int], ...] = ((64, 96), (184, 320), (256, 136))) -> float:
    """Max abs difference between PyTorch and ONNX Runtime outputs over ``sizes``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    view = _ContractView(model.eval())
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    m = model.size_multiple
    for h, w in sizes:
        x = torch.rand(1, 3, -(-h // m) * m, -(-w // m) * m, generator=generator)  # sides up to the model's multiple
        with torch.no_grad():
            expected = [t.numpy() for t in view(x)]
        got = session.run(list(mc.OUTPUT_NAMES), {mc.INPUT_NAME: x.numpy()})
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(expected, got)))
    return worst
