from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from vstream.stages import model_contract as mc  # noqa: E402
from vstream.stages.infer import InterferenceModel  # noqa: E402
from vstream.train.export import export_onnx, parity  # noqa: E402
from vstream.train.network import DualBranchNet  # noqa: E402


@pytest.fixture(scope="module", params=["background", "affine"])
def exported(tmp_path_factory, request):
    torch.manual_seed(0)
    net = DualBranchNet(widths=(8, 16, 32), blocks=(1, 1, 1), result=request.param)
    with torch.no_grad():  # a random, non-identity network
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "net.onnx", "reflection", "t1", {"model": {}})
    return net, path


def test_parity_with_pytorch_at_three_sizes(exported):
    net, path = exported
    assert parity(net, path, ((64, 96), (184, 320), (256, 136))) <= 1e-4


def test_contract_names_metadata_and_dynamic_axes(exported):
    import onnx

    _, path = exported
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == [mc.INPUT_NAME]
    assert [o.name for o in graph.graph.output] == list(mc.OUTPUT_NAMES)
    assert graph.opset_import[0].version >= 17
    props = {p.key: p.value for p in graph.metadata_props}
    assert props[mc.META_KIND] == "reflection" and props[mc.META_SIZE_MULTIPLE] == "8"
    assert mc.META_CONFIG_HASH in props
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3]


def test_runtime_loads_the_export_without_torch_api(exported, rng):
    _, path = exported
    model = InterferenceModel(path)
    residual = model.residual(rng.integers(0, 256, (45, 77, 3), dtype=np.uint8))
    assert residual.shape == (45, 77, 3) and np.abs(residual).max() > 0
