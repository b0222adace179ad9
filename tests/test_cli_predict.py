"""``predict`` and ``predict finetune`` end to end through the command line, as a user runs them."""
from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest

from bench_data import registry
from predictors.api import Predictor, available_checkpoints

from .test_cli_convert import run_predict
from .test_predictor_api import _random_predictor


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "random.ckpt"
    _random_predictor().save(path)
    return path


@pytest.fixture
def onnx_files(tmp_path, zoo_export):
    paths = []
    for name in ("resnet", "vit", "mobilenetv3"):
        path = tmp_path / f"{name}.onnx"
        onnx.save(zoo_export(name), path)
        paths.append(path)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    return paths, broken


def test_json_output_one_object_per_input_in_order(onnx_files, checkpoint):
    paths, broken = onnx_files
    result = run_predict(paths[0], broken, *paths[1:], "--checkpoint", checkpoint, "--json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(paths[0]), str(broken), *map(str, paths[1:])]
    assert "error" in rows[1] and "score" not in rows[1]
    expected = Predictor.from_pretrained(checkpoint).predict(paths)
    for row, p in zip([rows[0], *rows[2:]], expected):
        assert set(row) >= {"path", "score", "accuracy", "std", "ood", "flops", "params"}
        assert row["score"] == pytest.approx(p.score, abs=1e-5) and row["flops"] == p.flops


def test_table_output_and_errors(onnx_files, checkpoint):
    paths, broken = onnx_files
    result = run_predict(*paths, broken, "--checkpoint", checkpoint)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "score", "accuracy"]
    assert all(str(p) in result.stdout for p in paths) and "+-" in lines[1]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(f"error: {broken}: not a valid ONNX file")
    assert run_predict(paths[0], "--checkpoint", "no_such_checkpoint").returncode == 2


def test_help_says_what_the_numbers_mean():
    text = run_predict("--help").stdout
    for phrase in ("ranking", "percent", "uncertainty", "OOD", "NAS-Bench-101"):
        assert phrase in text


@pytest.mark.skipif(not available_checkpoints(), reason="no shipped checkpoint yet")
def test_shipped_checkpoints_load_and_describe_themselves():
    for name in available_checkpoints():
        predictor = Predictor.from_pretrained(name)
        assert predictor.metadata["trained_on"] and predictor.metadata["command"]
        assert predictor.calibration["a"] >= 0 and predictor.ood["threshold"] > 0


@pytest.mark.slow
@pytest.mark.skipif("nb101" not in available_checkpoints(), reason="the nb101 checkpoint is not shipped")
def test_finetune_through_the_cli_improves_the_ranking_within_a_family(tmp_path, nb201_records):
    """The shipped NB-101 checkpoint meets NB-201 networks (ONNX files) with their real CIFAR-10 labels:
    fine-tune on 100 through the CLI, predict 100 others with the new checkpoint: the ranking improves
    and the predictions move to the family's label scale."""
    from predictors.metrics import srcc

    space = registry.get_space("nb201")
    rng = np.random.default_rng(0)
    chosen = [nb201_records[i] for i in rng.choice(len(nb201_records), 200, replace=False)]
    for i, record in enumerate(chosen):
        onnx.save(space.to_onnx(record.arch), tmp_path / f"net{i}.onnx")
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "accuracy"])
        writer.writerows([f"net{i}.onnx", r.targets["cifar10"]] for i, r in enumerate(chosen[:100]))
    held_out = [tmp_path / f"net{i}.onnx" for i in range(100, 200)]
    truth = [r.targets["cifar10"] for r in chosen[100:]]

    before = json.loads(run_predict(*held_out, "--checkpoint", "nb101", "--json").stdout)
    tuned = tmp_path / "tuned.ckpt"
    result = run_predict("finetune", tmp_path / "labels.csv", "--checkpoint", "nb101", "--out", tuned, "--epochs", "100")
    assert result.returncode == 0, result.stderr
    assert "fine-tuned on 100 networks" in result.stdout and "averaged with the zero-shot blend" in result.stdout
    after = json.loads(run_predict(*held_out, "--checkpoint", tuned, "--json").stdout)
    acc_before, acc_after = [r["accuracy"] for r in before], [r["accuracy"] for r in after]
    assert abs(np.mean(acc_after) - np.mean(truth)) < 3.0  # the family's scale, fitted on its labels
    assert srcc(acc_after, truth) > srcc(acc_before, truth) + 0.03, (srcc(acc_before, truth), srcc(acc_after, truth))
    assert Predictor.from_pretrained(tuned).metadata["finetune_labels"] == 100


def test_finetune_no_blend_writes_the_network_alone(tmp_path, zoo_export, checkpoint):
    """``--no-blend``: the written checkpoint predicts with the fine-tuned network alone."""
    from .zoo import ZOO

    names = sorted(ZOO)[:6]
    for name in names:
        onnx.save(zoo_export(name), tmp_path / f"{name}.onnx")
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "accuracy"], *([f"{name}.onnx", 60 + i] for i, name in enumerate(names))])
    for flags, blended in ((["--no-blend"], False), ([], True)):
        out = tmp_path / f"tuned{blended}.ckpt"
        result = run_predict("finetune", tmp_path / "labels.csv", "--checkpoint", checkpoint, "--out", out,
                             "--epochs", "2", *flags)
        assert result.returncode == 0, result.stderr
        assert ("averaged with the zero-shot blend" in result.stdout) == blended
        assert (Predictor.from_pretrained(out).pretrained_blend is not None) == blended


def test_unknown_and_folded_operators_are_reported(tmp_path, checkpoint):
    import torch

    from graph_encoders import export_torch

    from .test_parser import _Branches, _tiny_model

    custom = tmp_path / "custom.onnx"
    onnx.save(_tiny_model([
        onnx.helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        onnx.helper.make_node("FancyNorm", ["c"], ["y"], domain="com.acme"),
    ], extra_domain="com.acme"), custom)
    zeroed = tmp_path / "zeroed.onnx"
    onnx.save(export_torch(_Branches(0.0), torch.randn(1, 3, 16, 16)), zeroed)
    rows = json.loads(run_predict(custom, zeroed, "--checkpoint", checkpoint, "--json").stdout)
    assert rows[0]["unknown_ops"] == ["com.acme::FancyNorm"] and rows[0]["folded_nodes"] == 0
    assert rows[1]["unknown_ops"] == [] and rows[1]["folded_nodes"] == 3
    table = run_predict(custom, zeroed, "--checkpoint", checkpoint).stdout.splitlines()
    assert "unknown ops as 'other': com.acme::FancyNorm" in table[1]
    assert "3 nodes folded" in table[2]


@pytest.mark.parametrize("name", ["nb101", "default"])
def test_a_network_that_ignores_its_input_gets_chance_level(tmp_path, name):
    """NB-201 cells whose output node reads only ``none`` edges compute a constant (10 % on
    CIFAR-10, 341 of the 15,625): the shipped predictors must state chance level and rank such a
    network below a working one, instead of scoring it like its neighbours (88 % before)."""
    import torch

    from bench_data.spaces.nb201 import NB201Space
    from graph_encoders import export_torch

    space, x = NB201Space(N=1), torch.randn(1, 3, 32, 32)
    archs = {"dead": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
             "alive": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"}
    paths = []
    for label, arch in archs.items():
        paths.append(tmp_path / f"{label}.onnx")
        onnx.save(export_torch(space.build(arch).eval(), x), paths[-1])
    dead, alive = json.loads(run_predict(*paths, "--checkpoint", name, "--json").stdout)
    assert dead["constant_output"] and not alive["constant_output"]
    assert dead["accuracy"] == pytest.approx(10.0) and dead["std"] == 0.0
    assert alive["accuracy"] > 30.0 and dead["score"] < alive["score"]
    assert "output ignores the input" in run_predict(*paths, "--checkpoint", name).stdout.splitlines()[1]
