"""ONNX -> CG on real exports of real torch models: canonical, exact counts, every input form."""
from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from graph_encoders import ComputationGraph, ModelLoadError, export_torch, onnx_to_cg
from graph_encoders.features import NUM_FEATURES
from graph_encoders.vocabulary import CATEGORIES

from .conftest import EXPORT_MODES
from .zoo import ZOO, build, inference_params

RECURRENT = {"lstm", "gru"}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_exporter_gives_the_same_graph(name, zoo_export):
    graphs = {mode: onnx_to_cg(zoo_export(name, mode)) for mode in EXPORT_MODES}
    reference = graphs["legacy_eval"].structure()
    for mode, cg in graphs.items():
        assert cg.structure() == reference, f"{name}: {mode} export differs from legacy eval export"
    assert graphs["legacy_eval"].num_nodes > 5


@pytest.mark.parametrize("name", sorted(ZOO))
def test_params_equal_torch_count_with_bn_folded(name, zoo_export):
    model, _ = build(name)
    expected = sum(p.numel() for p in model.parameters()) if name in RECURRENT else inference_params(model)
    for mode in ("legacy_eval", "legacy_training"):
        assert onnx_to_cg(zoo_export(name, mode)).params == expected, mode


@pytest.mark.parametrize("name", ["vit", "lstm", "gru"])
def test_params_equal_trainable_count_without_batchnorm(name, zoo_export):
    model, _ = build(name)
    assert onnx_to_cg(zoo_export(name)).params == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_shape_plumbing_and_bookkeeping_are_folded(zoo_export):
    for name in ZOO:
        for mode in EXPORT_MODES:
            ops = {n.op_type for n in onnx_to_cg(zoo_export(name, mode)).nodes}
            assert not ops & {"Shape", "Constant", "ConstantOfShape", "Identity", "Dropout", "Gemm", "BatchNormalization"}, (name, mode)


def test_transformer_ops_are_recognised(zoo_export):
    histogram = onnx_to_cg(zoo_export("vit", "legacy_training")).op_histogram()
    assert histogram["layer_norm"] == 5 and histogram["gelu"] == 2 and histogram["softmax"] == 2
    assert histogram["linear"] == 9 and histogram["matmul"] == 4 and histogram["other"] == 0


def test_mobilenet_ops_are_recognised(zoo_export):
    histogram = onnx_to_cg(zoo_export("mobilenetv3")).op_histogram()
    assert histogram["depthwise_conv"] == 6 and histogram["hard_swish"] == 9
    assert histogram["hard_sigmoid"] == 4  # one per squeeze-excite gate
    assert histogram["global_avg_pool"] == 5
    silu = onnx_to_cg(zoo_export("mobilenetv2_silu")).op_histogram()
    assert silu["swish"] == 2 and silu["relu6"] == 1


@pytest.mark.parametrize("opset", [11, 13, 16, 20])
@pytest.mark.parametrize("name", ["vit", "mobilenetv3", "unet", "lstm"])
def test_every_opset_gives_the_same_graph(name, opset, zoo_export):
    model, example = build(name)
    assert onnx_to_cg(export_torch(model, example, opset=opset)).structure() == onnx_to_cg(zoo_export(name)).structure()


def test_newest_opset_the_installed_onnx_knows(zoo_export):
    newest = onnx.defs.onnx_opset_version()
    converted = onnx.version_converter.convert_version(zoo_export("resnet"), newest)
    assert converted.opset_import[0].version == newest
    assert onnx_to_cg(converted).structure() == onnx_to_cg(zoo_export("resnet")).structure()


def test_conv_linear_matmul_macs_match_hand_counts():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 16x16 -> 8x8
            self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8)
            self.fc = nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            y = self.dw(self.conv(x)).flatten(1)
            return self.fc(y) + (y[:, :16].reshape(1, 4, 4) @ y[:, 16:32].reshape(1, 4, 4)).sum()

    cg = onnx_to_cg(Tiny(), torch.zeros(1, 3, 16, 16))
    by_category = {}
    for node in cg.nodes:
        by_category[node.category] = by_category.get(node.category, 0) + node.macs
    assert by_category["conv"] == 8 * 8 * 8 * 3 * 3 * 3
    assert by_category["depthwise_conv"] == 8 * 8 * 8 * 1 * 5 * 5
    assert by_category["linear"] == 512 * 10
    assert by_category["matmul"] == 4 * 4 * 4
    assert cg.macs == sum(by_category.values())


def test_macs_are_per_sample_and_recurrent_macs_count_gates():
    model, example = build("lstm")
    one = onnx_to_cg(model, example)
    four = onnx_to_cg(model, example.repeat(4, 1, 1))
    assert four.macs == one.macs
    lstm = next(n for n in one.nodes if n.category == "lstm")
    assert lstm.macs == 12 * 4 * 32 * (16 + 32)  # steps x gates x hidden x (inputs + hidden)


def test_node_attributes_describe_the_operator(zoo_export):
    cg = onnx_to_cg(zoo_export("mobilenetv3", "dynamo"))
    depthwise = [n for n in cg.nodes if n.category == "depthwise_conv"]
    assert {n.attrs["kernel"] for n in depthwise} == {(3, 3), (5, 5)}
    assert any(n.attrs["stride"] == (2, 2) for n in depthwise)
    assert all(n.attrs["groups"] == n.in_shapes[0][1] and n.attrs["bias"] == 1 for n in depthwise)


def test_every_input_form_gives_the_same_graph(tmp_path, zoo_export):
    proto = zoo_export("inception")
    path = tmp_path / "inception.onnx"
    onnx.save(proto, path)
    model, example = build("inception")
    reference = onnx_to_cg(proto).structure()
    assert onnx_to_cg(path).structure() == reference
    assert onnx_to_cg(str(path)).structure() == reference
    assert onnx_to_cg(path.read_bytes()).structure() == reference
    assert onnx_to_cg(model, example).structure() == reference


def test_weights_as_graph_inputs(tmp_path):
    model, example = build("resnet")
    path = tmp_path / "as_inputs.onnx"
    torch.onnx.export(model, (example,), path, dynamo=False, keep_initializers_as_inputs=True, opset_version=11)
    proto = onnx.load(path)
    assert len(proto.graph.input) > 1  # the weights really are listed as inputs
    assert onnx_to_cg(proto).structure() == onnx_to_cg(model, example).structure()
    # no initializers at all: weights arrive only as inputs, to be fed at run time
    del proto.graph.initializer[:]
    stripped = onnx_to_cg(proto)
    assert stripped.params == onnx_to_cg(model, example).params
    assert [n.category for n in stripped.nodes] == [n.category for n in onnx_to_cg(model, example).nodes]


def test_external_data_present_or_absent(tmp_path, zoo_export):
    proto = onnx.ModelProto()
    proto.CopyFrom(zoo_export("resnet", "dynamo"))
    path = tmp_path / "resnet.onnx"
    onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True, location="resnet.onnx.data", size_threshold=0)
    data = tmp_path / "resnet.onnx.data"
    assert data.stat().st_size > path.stat().st_size
    with_data = onnx_to_cg(path)
    data.unlink()
    without_data = onnx_to_cg(path)
    assert with_data.structure() == without_data.structure() == onnx_to_cg(zoo_export("resnet")).structure()


def _tiny_model(nodes, opset=17, extra_domain=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.zeros(108, dtype=np.float32))
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(extra_domain, 1)] if extra_domain else [])
    return helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], [w]), opset_imports=imports)


def test_custom_domain_op_becomes_other_and_is_reported():
    model = _tiny_model([
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("FancyNorm", ["c"], ["f"], domain="com.acme"),
        helper.make_node("Relu", ["f"], ["y"]),
    ], extra_domain="com.acme")
    cg = onnx_to_cg(model)
    other = [i for i, n in enumerate(cg.nodes) if n.category == "other"]
    assert len(other) == 1 and cg.unknown_ops == ["com.acme::FancyNorm"]
    (o,) = other
    assert any(d == o for _, d in cg.edges) and any(s == o for s, _ in cg.edges)  # still wired in
    assert "FancyNorm" in cg.summary()


def test_control_flow_on_the_data_path_is_a_clear_error():
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["r"])], "b", [], [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)])
    model = _tiny_model([
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch),
    ])
    model.graph.initializer.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
    with pytest.raises(ModelLoadError, match="control-flow op If"):
        onnx_to_cg(model, name="branchy.onnx")


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"),
    (b"hello, I am a text file\n", "not a valid ONNX file|not an ONNX model"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a valid ONNX file|not an ONNX model"),
])
def test_bad_files_get_one_line_errors_naming_them(tmp_path, content, problem):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=problem) as err:
        onnx_to_cg(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_truncated_missing_and_nodeless_models(tmp_path, zoo_export):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(zoo_export("resnet").SerializeToString()[:5000])
    with pytest.raises(ModelLoadError, match="truncated.onnx: not a valid ONNX file"):
        onnx_to_cg(truncated)
    with pytest.raises(ModelLoadError, match="missing.onnx: no such file"):
        onnx_to_cg(tmp_path / "missing.onnx")
    empty = helper.make_model(helper.make_graph([], "empty", [], []))
    with pytest.raises(ModelLoadError, match="no nodes"):
        onnx_to_cg(empty)


def test_outputs_networkx_pyg_and_json_round_trip(tmp_path, zoo_export):
    cg = onnx_to_cg(zoo_export("unet"))
    graph = cg.to_networkx()
    assert nx.is_directed_acyclic_graph(graph) and graph.number_of_nodes() == cg.num_nodes
    assert graph.number_of_edges() == len(cg.edges)
    assert list(nx.topological_sort(graph))  # edges follow the forward pass
    assert all(s < d for s, d in cg.edges)  # and the node order is topological

    data = cg.to_pyg()
    assert data.x.shape == (cg.num_nodes, NUM_FEATURES) and data.edge_index.shape == (2, len(cg.edges))
    assert int(data.op.max()) < len(CATEGORIES) and torch.isfinite(data.x).all()
    assert float(data.x.abs().max()) <= 4.0  # features stay on a GNN-friendly scale

    path = tmp_path / "unet.cg.json"
    cg.save_json(path)
    again = ComputationGraph.load_json(path)
    assert again.structure() == cg.structure() and again.macs == cg.macs and again.params == cg.params
    assert torch.equal(again.to_pyg().x, data.x)

    graphml = tmp_path / "unet.graphml"
    cg.write_graphml(graphml)
    assert nx.read_graphml(graphml).number_of_nodes() == cg.num_nodes


def test_graph_statistics(zoo_export):
    cg = onnx_to_cg(zoo_export("inception"))
    assert cg.depth < cg.num_nodes  # multi-branch: the longest path skips the parallel branches
    assert cg.op_histogram()["concat"] == 2
    assert cg.input_shapes == [(1, 3, 32, 32)]


class _Branches(nn.Module):
    """x -> conv -> (a: conv, b: conv * scale) -> a + b, with ``scale`` a constant or a parameter."""

    def __init__(self, scale: float | None, learned: bool = False):
        super().__init__()
        self.stem, self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 1)
        self.scale = nn.Parameter(torch.zeros(1, 8, 1, 1)) if learned else scale  # a zero-initialised layer scale

    def forward(self, x):
        h = torch.relu(self.stem(x))
        out = self.a(h)
        if self.scale is not None:
            out = out + self.b(h) * self.scale
        return out


def test_a_product_with_zero_is_folded_and_reported():
    x = torch.randn(1, 3, 16, 16)
    zeroed = onnx_to_cg(export_torch(_Branches(0.0), x))
    plain = onnx_to_cg(export_torch(_Branches(None), x))
    kept = onnx_to_cg(export_torch(_Branches(0.5), x))
    assert zeroed.structure() == plain.structure()  # the zeroed conv branch, its Mul and the Add are gone
    assert zeroed.params == plain.params and zeroed.macs == plain.macs
    assert zeroed.folded_nodes == 3 and "3 nodes folded" in zeroed.summary()
    assert kept.folded_nodes == 0 and kept.op_histogram()["mul"] == 1
    assert ComputationGraph.from_dict(zeroed.to_dict()).folded_nodes == 3


def test_a_learned_zero_tensor_is_a_parameter_not_folded():
    cg = onnx_to_cg(export_torch(_Branches(None, learned=True), torch.randn(1, 3, 16, 16)))
    assert cg.folded_nodes == 0 and cg.op_histogram()["mul"] == 1


def test_a_network_computing_a_constant_keeps_its_input_and_output():
    class Constant(nn.Module):
        def forward(self, x):
            return torch.relu(x * 0.0) + 1.0

    cg = onnx_to_cg(export_torch(Constant(), torch.randn(1, 3, 8, 8)))
    assert [n.category for n in cg.nodes] == ["input", "output"] and cg.edges == [] and cg.folded_nodes > 0
