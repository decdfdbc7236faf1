from __future__ import annotations

import numpy as np
import pytest

from vstream.errors import ModelError, ModelMismatchError, ProviderError
from vstream.stages.infer import InterferenceModel, providers_for


@pytest.mark.parametrize("size", [(64, 96), (61, 83), (5, 7)])
def test_dimming_model_residual(dimming_model, rng, size):
    """Any size works (padded to the model's multiple and cropped back); the residual is exact."""
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    residual = InterferenceModel(dimming_model).residual(rgb)
    x = rgb.astype(np.float32) / 255
    assert residual.shape == (*size, 3) and residual.dtype == np.float32
    np.testing.assert_allclose(residual, x - (0.8 * x + 0.05), atol=1e-6)


def test_identity_model_removes_nothing(identity_model, rng):
    rgb = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert np.abs(InterferenceModel(identity_model).residual(rgb)).max() < 1e-7


def test_model_from_bytes(dimming_model):
    model = InterferenceModel(dimming_model.read_bytes())
    assert model.kind == "reflection"


def test_exception_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        InterferenceModel(tmp_path / "nope.onnx")


def test_exception_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load model"):
        InterferenceModel(bad)


def test_exception_wrong_contract(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "other.onnx")
    with pytest.raises(ModelMismatchError, match="not a vstream model"):
        InterferenceModel(tmp_path / "other.onnx")


def test_providers():
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="unknown device"):
        providers_for("tpu")


def test_cuda_without_onnxruntime_gpu_is_a_clear_error():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(ProviderError, match="onnxruntime-gpu"):
        providers_for("cuda")
