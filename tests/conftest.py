"""Shared fixtures: tiny ONNX models built with onnx.helper (no torch), generated media."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vstream.stages import model_contract as mc


def write_model(path: Path, background_scale: float, background_offset: float) -> Path:
    """A contract-conforming model whose background is ``input * scale + offset``.

    scale=1, offset=0 is the identity network (nothing removed); anything else changes frames by a
    known amount, so tests can check that cleaning was applied exactly once.
    """
    import onnx
    from onnx import TensorProto, helper

    dims = ["N", 3, "H", "W"]
    graph = helper.make_graph(
        [
            helper.make_node("Mul", [mc.INPUT_NAME, "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "offset"], [mc.OUTPUT_BACKGROUND]),
            helper.make_node("Sub", [mc.INPUT_NAME, mc.OUTPUT_BACKGROUND], [mc.OUTPUT_INTERFERENCE]),
        ],
        "vstream_test_model",
        [helper.make_tensor_value_info(mc.INPUT_NAME, TensorProto.FLOAT, dims)],
        [
            helper.make_tensor_value_info(mc.OUTPUT_BACKGROUND, TensorProto.FLOAT, dims),
            helper.make_tensor_value_info(mc.OUTPUT_INTERFERENCE, TensorProto.FLOAT, dims),
        ],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [], [background_scale]),
            helper.make_tensor("offset", TensorProto.FLOAT, [], [background_offset]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", mc.OPSET)])
    model.ir_version = 8
    helper.set_model_props(model, {mc.META_KIND: "reflection", mc.META_VERSION: "test"})
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory) -> Path:
    """A model that removes nothing: background == input."""
    return write_model(tmp_path_factory.mktemp("models") / "identity.onnx", 1.0, 0.0)


@pytest.fixture(scope="session")
def dimming_model(tmp_path_factory) -> Path:
    """A model that removes a known layer: background == 0.8 * input + 0.05."""
    return write_model(tmp_path_factory.mktemp("models") / "dimming.onnx", 0.8, 0.05)


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI sets up the root logger (``logging.basicConfig(force=True)``, ERROR with ``-q``):
    undo it after each test, so that one test's ``-q`` cannot hide the next one's warnings."""
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
