"""Shared fixtures: one thread for torch (see STACK.md), cached ONNX exports of the test zoo."""
from __future__ import annotations

import logging
import os
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("WANDB_MODE", "disabled")

import onnx  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
logging.getLogger("torch.onnx").setLevel(logging.ERROR)

from graph_encoders import export_torch  # noqa: E402

from .zoo import build  # noqa: E402

EXPORT_MODES = ("legacy_eval", "legacy_training", "dynamo")


def export(model, example, mode: str, opset: int = 17) -> onnx.ModelProto:
    """Export ``model`` the way ``mode`` names: legacy eval (BN folded), legacy training mode (BN kept), dynamo."""
    if mode == "legacy_eval":
        return export_torch(model, example, opset=opset)
    if mode == "legacy_training":
        return export_torch(model, example, training=True, opset=opset)
    if mode == "dynamo":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(model, (example,), dynamo=True, verbose=False).model_proto
    raise ValueError(mode)


@pytest.fixture(scope="session")
def zoo_export():
    """``zoo_export(name, mode)`` -> ModelProto, each export done once per session."""
    cache: dict = {}

    def get(name: str, mode: str = "legacy_eval") -> onnx.ModelProto:
        if (name, mode) not in cache:
            model, example = build(name)
            cache[name, mode] = export(model, example, mode)
        return cache[name, mode]

    return get


@pytest.fixture(scope="session")
def experiment_script():
    """``experiment_script("latency_noise")``: a script of ``experiments/`` as a module (they are
    commands, not a package), to test the functions their results rest on."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "experiments" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def nb201_records():
    """NB-201's 15,625 records (CIFAR-10/100 and ImageNet16 labels; HELP latencies and NASLib's
    zero-cost proxies where their files are present), read once per session; the test skips,
    saying which file is missing, where the benchmark data is absent."""
    from bench_data import registry
    from bench_data.paths import MissingBenchmarkFile

    try:
        return registry.load_records("nb201")
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
