"""``predict convert`` as a user runs it: real files, good and bad in one call."""
from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import onnx
import pytest
from onnx import TensorProto, helper

from graph_encoders import ComputationGraph, onnx_to_cg


def run_predict(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "predictors.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def files(tmp_path, zoo_export):
    good = tmp_path / "resnet.onnx"
    onnx.save(zoo_export("resnet"), good)
    vit = tmp_path / "vit.onnx"
    onnx.save(zoo_export("vit", "dynamo"), vit)
    bad = {
        "empty.onnx": b"",
        "text.onnx": b"this is not a model\n",
        "truncated.onnx": good.read_bytes()[:3000],
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    return good, vit, [tmp_path / name for name in bad] + [tmp_path / "missing.onnx"]


def test_summary_line_per_good_file_and_one_error_line_per_bad_one(files):
    good, vit, bad = files
    result = run_predict("convert", bad[0], good, *bad[1:], vit)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(good)) and lines[1].startswith(str(vit))
    for field in ("nodes", "edges", "FLOPs", "params", "input 1x3x32x32", "conv:20"):
        assert field in lines[0]
    expected = onnx_to_cg(good)
    assert f"{expected.num_nodes} nodes" in lines[0]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors):
        assert line.startswith(f"error: {path}:")


def test_writes_json_and_graphml(files, tmp_path):
    good, vit, _ = files
    out = tmp_path / "cg.json"
    assert run_predict("convert", good, "--out", out).returncode == 0
    cg = ComputationGraph.load_json(out)
    assert cg.structure() == onnx_to_cg(good).structure()
    assert json.loads(out.read_text())["params"] == cg.params

    graphml = tmp_path / "vit.graphml"
    assert run_predict("convert", vit, "--graphml", graphml).returncode == 0
    assert nx.read_graphml(graphml).number_of_nodes() == onnx_to_cg(vit).num_nodes

    folder = tmp_path / "many"
    assert run_predict("convert", good, vit, "--out", folder).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["resnet.cg.json", "vit.cg.json"]


def test_custom_op_is_converted_and_reported(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Warp", ["r"], ["y"], domain="org.custom")], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("org.custom", 1)],
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, path)
    result = run_predict("convert", path)
    assert result.returncode == 3
    assert "org.custom::Warp" in result.stdout and "other:1" in result.stdout
    assert result.stderr.strip() == f"warning: {path}: unknown operators kept as category 'other': org.custom::Warp"
