"""NAS-Bench-201 search space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020; = NATS-Bench topology space TSS).

The network is the benchmark's ``TinyNetwork`` (D-X-Y/AutoDL-Projects,
``models/cell_infers/tiny_network.py``), re-written here:

* stem: conv3x3(3 -> C, no bias) + BN
* three stages of N cells at C, 2C, 4C channels, separated by a ResNet basic block with
  stride 2 (ReLU-conv3x3/s2-BN, ReLU-conv3x3-BN, shortcut avgpool2x2 + conv1x1, no bias)
* BN + ReLU, global average pool, linear classifier (with bias).

A cell is a 4-node DAG. Node 0 is the cell input, node j (1..3) is the sum over i < j of
``op_ij(node i)`` and node 3 is the cell output. Every edge carries one of the five ops in
:data:`OPS`. The architecture key is the benchmark's string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Parameter counting: the benchmark's ``params`` (as NASWOT's file copies it, CIFAR-10 net)
counts *every* ``nn.Parameter``: conv weights (no conv biases exist), the BN affine weight
and bias (2 per channel; running statistics are buffers, not counted) and the classifier
weight and bias. It is stored in millions with 6 decimals, i.e. exactly to one parameter.
``count_parameters(NB201Space().build(arch))`` reproduces it for 15,421 of the 15,625
cells. The other 204 stored values are off by 1/3, 1/2 or 2/3 of
one conv edge's parameters (e.g. 9,333 = 28,000 / 3 for a 1x1 edge): apparently means over
2-3 training runs whose recorded counts disagree, an artefact of the NB-201 v1.0 results
(NASLib's zero-cost file, which counts real networks, agrees with this module on the 11 of
them it holds). ``stored_params`` keeps the stored value.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections import Counter
from typing import Sequence

import torch
from torch import nn

from bench_data.paths import benchmark_file
from bench_data.spaces.base import ArchRecord, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NATS_FILE = "nb201_nats_landscape/nats_bench.csv"
NASWOT_FILE = "nb201_naswot/arch_score_acc_derived.csv"
HELP_LATENCY_FILE = "help_latency/nb201_latency_derived.csv"  # optional: ms per device (HELP / HW-NAS-Bench)
NASLIB_ZC_FILE = "naslib_zc/zc_nasbench201_subset.json"  # optional: NASLib's ten zero-cost proxies for 725 cells
# NASLib's key: op indices (into NASLIB_OPS) over the edges (1,2), (1,3), (1,4), (2,3), (2,4), (3,4)
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}

# Dataset -> (num_classes, input side). ImageNet16-120 is 16x16 with 120 classes.
DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "imagenet16": (120, 16)}

Genotype = tuple  # ((op, src),) for node 1, then node 2's pairs, then node 3's


def parse_arch(arch: str) -> Genotype:
    """``'|a~0|+|b~0|c~1|+...'`` -> ``(((a,0),), ((b,0),(c,1)), ...)`` (validated)."""
    nodes = []
    for j, node in enumerate(arch.split("+"), start=1):
        edges = []
        for token in filter(None, node.split("|")):
            op, src = token.split("~")
            if op not in OPS or not 0 <= int(src) < j:
                raise ValueError(f"invalid NB-201 edge {token!r} into node {j} of {arch!r}")
            edges.append((op, int(src)))
        nodes.append(tuple(edges))
    if len(nodes) != 3:
        raise ValueError(f"NB-201 cells have 3 computed nodes, got {len(nodes)}: {arch!r}")
    return tuple(nodes)


# ---------------------------------------------------------------------------- modules
class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias) -> BN (affine). The benchmark's pre-activation conv op."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),  # not in-place: the same node feeds several edges
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op. ``x.mul(0.)`` as in the benchmark, so the edge stays in the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _make_op(op: str, c: int) -> nn.Module:
    # Every cell edge is stride 1 with equal channels, so no op needs a projection.
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB-201 op {op!r}")


class InferCell(nn.Module):
    """One searched cell: node j = sum of op(node i) over its incoming edges."""

    def __init__(self, genotype: Genotype, c: int):
        super().__init__()
        self.edges = nn.ModuleList()
        self.sources: list[list[int]] = []  # per node, source node of each edge (in order)
        for node in genotype:
            self.sources.append([src for _, src in node])
            self.edges.extend(_make_op(op, c) for op, _ in node)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for sources in self.sources:
            total = None
            for src in sources:
                out = self.edges[k](nodes[src])
                total = out if total is None else total + out
                k += 1
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """Stride-2 reduction block between stages (fixed, not searched)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NB-201 macro skeleton. ``forward`` returns logits only (the reference also
    returns the pooled features)."""

    def __init__(self, genotype: Genotype, num_classes: int = 10, C: int = 16, N: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResNetBasicBlock(c_prev, c))
            cells.extend(InferCell(genotype, c) for _ in range(N))
            c_prev = c
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


# ------------------------------------------------------------------ canonical form
# A cell computes a sum of terms. Skip and avg-pool are linear and none is zero, so every
# node value is a linear combination of "atoms": the input x and the conv edges' outputs
# (each conv edge is its own set of parameters), possibly behind k avg-pools. Combinations
# are Counters {(atom, k): multiplicity}. The function is the DAG of conv atoms, so the
# canonical key is a canonical serialisation of that DAG.
_SHORT = {"nor_conv_1x1": "1x1", "nor_conv_3x3": "3x3"}


def _atom_dag(genotype: Genotype) -> tuple[list, Counter]:
    """Atoms ``[(label, input_combination)]`` (atom 0 = x) and the cell output combination."""
    atoms: list[tuple[str, tuple]] = [("x", ())]
    nodes = [Counter({(0, 0): 1})]
    for node in genotype:
        value: Counter = Counter()
        for op, src in node:
            source = nodes[src]
            if op == "skip_connect":
                value.update(source)
            elif op == "avg_pool_3x3":
                # avg is linear; and the average of a constant map ("b") is itself.
                value.update({(a, k + (atoms[a][0] != "b")): m for (a, k), m in source.items()})
            elif op != "none":
                # ReLU-conv-BN of an all-zero input is BN's per-channel shift: a learnable
                # constant "b" (same for 1x1 and 3x3), not zero.
                atoms.append((_SHORT[op], tuple(sorted(source.items()))) if source else ("b", ()))
                value[(len(atoms) - 1, 0)] += 1
        nodes.append(value)
    return atoms, nodes[-1]


def _terms(combination, name) -> str:
    parts = sorted(f"{m}*" * (m > 1) + "avg(" * k + name(a) + ")" * k for (a, k), m in combination)
    return "+".join(parts)


def canonical_string(arch: str) -> str:
    """A string equal for NB-201 cells that compute the same parametrised function.

    Merged, each exactly: ``none`` edges (x * 0 = 0) and whatever only they feed; skip
    edges (inlined); avg-pool, which is linear, distributed over sums; the order of terms
    in sums; conv edges whose output never reaches the cell output; a conv reading an
    all-zero node is a learnable constant ``b`` whatever its kernel (avg-pool of ``b`` is
    ``b``); and a cell whose output does not depend on its input makes the whole network a
    learnable constant: all such cells share the key ``"const"``.

    Not merged (so the key is sound, not complete): two conv edges computing equal
    expressions (``c0+c1``: two independently batch-normalised branches) versus one edge
    reached by two skip paths (``2*c0``: shared parameters); sums of constants.

    Over the 15,625 cells this gives 5,228 classes. NB-201's own ``to_unique_str`` (the
    ``UniqueString`` column of the NATS csv, 6,466 classes) differs both ways: it does not
    distribute avg-pool, but it conflates ``c0+c1`` with ``2*c0`` and drops ``b``.
    """
    atoms, output = _atom_dag(parse_arch(arch))
    # Keep the atoms the output reads (directly or through other atoms).
    live, stack = set(), [a for a, _ in output]
    while stack:
        a = stack.pop()
        if a not in live:
            live.add(a)
            stack.extend(b for (b, _), _m in atoms[a][1])
    if 0 not in live:
        return "const"

    # An isomorphism-invariant name per atom (its unfolded expression tree) ...
    tree: dict[int, str] = {}
    for a in sorted(live):  # atoms are created in topological order
        label, inputs = atoms[a]
        tree[a] = label if not inputs else f"{label}({_terms(inputs, tree.__getitem__)})"
    # ... orders the atoms up to ties between equal trees (distinct edges computing equal
    # expressions). Sharing can tell tied atoms apart, so try every order of each tie group
    # and keep the smallest serialisation: a canonical form of the atom DAG.
    groups: dict[str, list[int]] = {}
    for a in sorted(live - {0}, key=lambda a: (tree[a].count("("), tree[a])):
        groups.setdefault(tree[a], []).append(a)
    best = None
    for orders in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        ids = {a: f"c{i}" for i, a in enumerate(a for order in orders for a in order)}
        ids[0] = "x"
        name = ids.__getitem__
        lines = [f"{ids[a]}={label}" + (f"({_terms(inputs, name)})" if inputs else "")
                 for order in orders for a in order for label, inputs in [atoms[a]]]
        key = ";".join(lines + [_terms(output.items(), name)])
        best = key if best is None or key < best else best
    return best


# -------------------------------------------------------------------------- space
class NB201Space(SearchSpace):
    """NAS-Bench-201 (15,625 cells). Keys are NB-201 architecture strings."""

    name = "nb201"

    def __init__(self, num_classes: int = 10, input_size: int = 32, C: int = 16, N: int = 5):
        self.num_classes = num_classes
        self.input_shape = (3, input_size, input_size)
        self.C, self.N = C, N

    @classmethod
    def for_dataset(cls, dataset: str) -> "NB201Space":
        """The space as trained on ``cifar10`` / ``cifar100`` / ``imagenet16`` (16x16, 120)."""
        num_classes, side = DATASETS[dataset]
        return cls(num_classes=num_classes, input_size=side)

    def build(self, arch: str) -> nn.Module:
        return TinyNetwork(parse_arch(arch), self.num_classes, self.C, self.N)

    def canonical_key(self, arch: str) -> str:
        return canonical_string(arch)

    def to_onnx(self, arch: str):
        """Written directly (~3 ms, :mod:`bench_data.emitters.nb201`); tests prove the CG equals the traced one."""
        from bench_data.emitters.nb201 import emit

        return emit(parse_arch(arch), self.num_classes, self.input_shape[1], self.C, self.N)


def _classifier_delta(num_classes: int, C: int = 16) -> int:
    """Extra parameters of a ``num_classes`` classifier over the CIFAR-10 one."""
    return (4 * C + 1) * (num_classes - 10)


def load_records(
    root: str | os.PathLike | None = None, dataset: str = "cifar10"
) -> list[ArchRecord]:
    """All 15,625 NB-201 architectures with labels, ``index`` = NB-201 arch index.

    Targets (percent, 200 epochs): ``cifar10`` (ori-test, trained on train+valid),
    ``cifar100`` and ``imagenet16`` (x-test), all means over seeds from NATS-Bench; plus
    from NASWOT's file ``cifar10_valid`` (CIFAR-10 validation accuracy) and ``naswot``
    (the NASWOT score; absent for the 341 rows where it is NaN), and from HELP's file
    ``latency:<device>`` in ms for 27 device/batch settings (HELP's NB-201 setting), and
    from NASLib's zero-cost subset ``zc:<proxy>`` (jacov, synflow, nwot, ... and flops /
    params, computed for ``dataset``) for the 725 cells it covers.

    ``stored_params`` is NASWOT's ``params`` (millions, CIFAR-10 net) converted to an exact
    integer count. For ``dataset`` cifar100 / imagenet16 it is that count plus the larger
    classifier's extra (64 + 1) * (num_classes - 10) parameters, i.e. what
    ``NB201Space.for_dataset(dataset)`` builds (derived, not stored by a file).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    delta = _classifier_delta(DATASETS[dataset][0])
    with open(benchmark_file(NATS_FILE, root), newline="") as f:
        nats = list(csv.DictReader(f))
    with open(benchmark_file(NASWOT_FILE, root), newline="") as f:
        naswot = {int(r["arch"]): r for r in csv.DictReader(f)}
    latency = _help_latency(root)
    zero_cost = _naslib_zero_cost(root, dataset)

    records = []
    for index, row in enumerate(nats):
        arch = row["ArchitectureString"]
        targets = {
            "cifar10": float(row["CIFAR10TestAccuracy200Epochs"]),
            "cifar100": float(row["CIFAR100TestAccuracy200Epochs"]),
            "imagenet16": float(row["ImageNetTestAccuracy200Epochs"]),
        }
        params = None
        extra = naswot.get(index)
        if extra is not None:
            if extra["cellstr"] != arch:  # both files are indexed by NB-201 arch index
                raise ValueError(f"NB-201 index {index}: {extra['cellstr']!r} != {arch!r}")
            targets["cifar10_valid"] = float(extra["valid_top1"])
            score = float(extra["score"]) if extra["score"] else math.nan
            if not math.isnan(score):
                targets["naswot"] = score
            params = round(float(extra["params"]) * 1e6) + delta
        for device, value in latency.get(index, {}).items():
            targets[f"latency:{device}"] = value
        targets.update(zero_cost.get(arch, {}))
        records.append(ArchRecord(arch=arch, targets=targets, stored_params=params, index=index))
    return records


def naslib_arch_string(key: str) -> str:
    """NASLib's NB-201 key, e.g. ``"(0, 2, 3, 2, 3, 1)"``, as the NB-201 arch string."""
    e12, e13, e14, e23, e24, e34 = (NASLIB_OPS[int(i)] for i in key.strip("()").split(","))
    return f"|{e12}~0|+|{e13}~0|{e23}~1|+|{e14}~0|{e24}~1|{e34}~2|"


def _naslib_zero_cost(root, dataset: str) -> dict[str, dict[str, float]]:
    """NASLib's zero-cost scores (``zc:<proxy>``) by NB-201 arch string; empty when the file is absent."""
    from bench_data.spaces.darts import naslib_zc_scores

    try:
        path = benchmark_file(NASLIB_ZC_FILE, root)
    except FileNotFoundError:
        return {}
    with open(path) as f:
        table = json.load(f)[NASLIB_DATASETS[dataset]]
    return {naslib_arch_string(key): naslib_zc_scores(entry) for key, entry in table.items()}


def _help_latency(root) -> dict[int, dict[str, float]]:
    """HELP's NB-201 latencies (ms) by arch index and device; empty when the file is absent."""
    try:
        path = benchmark_file(HELP_LATENCY_FILE, root)
    except FileNotFoundError:
        return {}
    table = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table[int(row["idx"])] = {k: float(v) for k, v in row.items() if k not in ("idx", "arch_str") and v != ""}
    return table


__all__: Sequence[str] = [
    "NB201Space", "TinyNetwork", "InferCell", "parse_arch", "canonical_string", "load_records",
    "OPS",
]
