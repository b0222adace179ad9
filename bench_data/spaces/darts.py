"""DARTS / NAS-Bench-301 search space (CIFAR-10 evaluation network).

Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019 (``NetworkCIFAR`` in
``cnn/model.py``); Siems et al., "NAS-Bench-301 and the case for surrogate benchmarks", 2020.
Labels: the NASLib zero-cost subset ``naslib_zc/zc_nasbench301_subset.json`` (White et al.,
"A Deeper Look at Zero-Cost Proxies", 2022).

Architecture key -- NASLib's *compact* form, a pair of cells (normal, reduce), each a tuple
of 8 ``(in_node, op)`` pairs; pairs ``2k`` and ``2k+1`` are the two inputs of intermediate
node ``k``. ``in_node`` 0 / 1 are the cell inputs c_{k-2} / c_{k-1}, ``in_node`` j >= 2 is
intermediate node j-2; ``op`` indexes :data:`OPS`. Example::

    (((0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)),
     ((1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)))

Network: DARTS ``NetworkCIFAR`` with C=32, 8 cells (reductions at cells 2 and 5), stem
3x3 conv to 3C, intermediate nodes 2-5 concatenated, auxiliary head and drop-path off.

Parameter count: the stored ``params`` is NASLib's tensorwatch count of its NB-301 graph,
whose cell operations use **non-affine** BatchNorm (``affine=False``); the stem, the
preprocessing ReLU-Conv-BNs and the classifier are affine. ``DartsSpace()`` reproduces that
count exactly; ``DartsSpace(cell_affine=True)`` is the original DARTS training network
(affine BN everywhere), which has a few thousand more parameters.
"""
from __future__ import annotations

import ast
import json
import math
from typing import Any, Hashable, Sequence

import torch
from torch import nn

from ..paths import benchmark_file
from .base import ArchRecord, SearchSpace
from .blocks import DilConv, FactorizedReduce, ReLUConvBN, SepConv

OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")
DATA_FILE = "naslib_zc/zc_nasbench301_subset.json"
# NASLib writes this score when a proxy failed; such values are dropped, not kept as labels.
FAILED_SCORE = -100000000.0

Compact = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


def make_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    """One DARTS candidate operation on ``channels`` channels (``OPS`` in DARTS)."""
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, affine=affine)
    if name.startswith("sep_conv"):
        return SepConv(channels, channels, int(name[-1]), stride, affine=affine)
    if name.startswith("dil_conv"):
        return DilConv(channels, channels, int(name[-1]), stride, affine=affine)
    raise ValueError(f"unknown DARTS op {name!r}")


class Cell(nn.Module):
    """A DARTS cell: preprocess both inputs to C channels, 4 nodes of 2 ops each, concat."""

    def __init__(self, cell: Sequence[tuple[int, int]], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, affine: bool):
        super().__init__()
        # After a reduction cell c_{k-2} has twice the resolution of c_{k-1}.
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, padding=0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, padding=0)
        self.inputs = [int(src) for src, _ in cell]
        self.ops = nn.ModuleList(
            make_op(OPS[op], c, 2 if reduction and src < 2 else 1, affine) for src, op in cell)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(len(self.ops) // 2):
            a, b = 2 * node, 2 * node + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


class NetworkCIFAR(nn.Module):
    """DARTS evaluation network without auxiliary head; returns logits only."""

    def __init__(self, genotype: Compact, channels: int = 32, layers: int = 8,
                 num_classes: int = 10, cell_affine: bool = False, stem_multiplier: int = 3):
        super().__init__()
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = genotype[1] if reduction else genotype[0]
            self.cells.append(Cell(cell, c_prev_prev, c_prev, c_curr, reduction, reduction_prev,
                                   cell_affine))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, (len(cell) // 2) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def parse_compact(arch: Any) -> Compact:
    """The compact key as nested int tuples (accepts NASLib's string or nested lists)."""
    if isinstance(arch, str):
        arch = ast.literal_eval(arch)
    try:
        compact = tuple(tuple((int(src), int(op)) for src, op in cell) for cell in arch)
    except (TypeError, ValueError):
        compact = ()
    if len(compact) != 2 or any(len(cell) != 8 for cell in compact):
        raise ValueError(f"expected two cells of 8 (in_node, op) pairs, got {arch!r}")
    for cell in compact:
        for k, (src, op) in enumerate(cell):
            if not 0 <= src < 2 + k // 2 or not 0 <= op < len(OPS):
                raise ValueError(f"invalid pair {(src, op)} at position {k} of {arch!r}")
    return compact  # type: ignore[return-value]


class DartsSpace(SearchSpace):
    """NAS-Bench-301 / DARTS CIFAR-10 space (see the module docstring for the key)."""

    name = "nb301"
    input_shape = (3, 32, 32)
    num_classes = 10

    def __init__(self, channels: int = 32, layers: int = 8, cell_affine: bool = False):
        self.channels, self.layers, self.cell_affine = channels, layers, cell_affine

    def build(self, arch: Any) -> nn.Module:
        return NetworkCIFAR(parse_compact(arch), self.channels, self.layers, self.num_classes,
                            self.cell_affine)

    def canonical_key(self, arch: Any) -> Hashable:
        # The two inputs of a node are summed, so their order does not matter.
        cells = []
        for cell in parse_compact(arch):
            pairs: list[tuple[int, int]] = []
            for k in range(0, 8, 2):
                pairs.extend(sorted(cell[k:k + 2]))
            cells.append(tuple(pairs))
        return tuple(cells)

    def load_records(self, root=None) -> list[ArchRecord]:
        """725 labelled archs: target ``"cifar10"`` (NB-301 val. accuracy, %, ~91-95) and
        every zero-cost measure of the file as ``"zc:<name>"`` (incl. ``zc:flops`` in MFLOPs
        and ``zc:params`` in millions); ``stored_params`` is ``params`` as an integer count."""
        with open(benchmark_file(DATA_FILE, root)) as f:
            table = json.load(f)["cifar10"]
        return [naslib_zc_record(parse_compact(key), entry, "cifar10") for key, entry in table.items()]


def naslib_zc_scores(entry: dict) -> dict[str, float]:
    """One NASLib zero-cost entry's scores as ``{"zc:<name>": score}``, failed scores left out
    (shared by the NB-201, NB-301 and TNB loaders)."""
    scores = {}
    for name, value in entry.items():
        if isinstance(value, dict) and "score" in value:
            score = float(value["score"])
            if math.isfinite(score) and score != FAILED_SCORE:
                scores[f"zc:{name}"] = score
    return scores


def naslib_zc_record(arch: Any, entry: dict, target: str) -> ArchRecord:
    """An ArchRecord from one NASLib zero-cost entry (shared by the NB-301 and TNB loaders)."""
    targets = {target: float(entry["val_accuracy"]), **naslib_zc_scores(entry)}
    params = entry.get("params", {}).get("score")
    stored = round(float(params) * 1e6) if params is not None else None
    return ArchRecord(arch=arch, targets=targets, stored_params=stored, index=int(entry["idx"]))
