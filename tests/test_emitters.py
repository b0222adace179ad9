"""The fast path: networks written straight to ONNX give the same CGs as traced torch exports."""
from __future__ import annotations

import random

import pytest

from bench_data import registry
from bench_data.paths import MissingBenchmarkFile
from graph_encoders import onnx_to_cg

EMITTED_SPACES = ["nb101", "nb201"]


def _records(space):
    try:
        return registry.load_records(space)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("space_name", EMITTED_SPACES)
def test_emitted_graph_equals_traced_export(space_name):
    space = registry.get_space(space_name)
    records = _records(space_name)
    for record in random.Random(7).sample(records, 12):
        emitted = space.to_cg(record.arch)
        traced = onnx_to_cg(space.export_onnx(record.arch))
        assert emitted.structure() == traced.structure(), record.arch
        assert emitted.params == traced.params and emitted.macs == traced.macs


def test_emitted_nb201_covers_every_op_and_folds_the_zero_op():
    space = registry.get_space("nb201")
    arch = "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    emitted, traced = space.to_cg(arch), onnx_to_cg(space.export_onnx(arch))
    assert emitted.structure() == traced.structure()
    assert emitted.folded_nodes == traced.folded_nodes > 0
    # node 1 is zero, so the 1x1 conv reading it computes a constant: the same graph as the cell
    # written without that edge
    assert emitted.op_histogram()["mul"] == 0 and emitted.op_histogram()["avg_pool"] > 0
    without = space.to_cg("|none~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert emitted.structure() == without.structure()
