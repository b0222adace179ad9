"""NAS-Bench-101 search space (Ying et al., "NAS-Bench-101: Towards Reproducible Neural
Architecture Search", ICML 2019).

A PyTorch re-write of google-research/nasbench ``lib/model_builder.py`` (TensorFlow):

* stem: conv3x3 (128) - BN - ReLU
* 3 stacks of 3 cells; before stacks 2 and 3 a 2x2/2 max-pool, and the channel count
  doubles (128, 256, 512)
* global average pool, dense layer to 10 classes.

A cell is a DAG of up to 7 vertices (input, <= 5 ops, output) given as an upper-triangular
adjacency matrix plus op labels. Channels follow ``compute_vertex_channels``: the output's
channels are split evenly over the vertices that feed it (remainder to the lowest
vertices), other vertices take the max over their successors. Tensors from interior
vertices are summed after truncation to the receiving vertex's channels; the cell input is
instead projected (1x1 conv-BN-ReLU) into every vertex that reads it. The output
concatenates its interior predecessors and adds a projection of the input when the input
feeds the output directly.

Parameter counting: NB-101's ``trainable_parameters`` is the size of TF's trainable
variables: conv kernels (``use_bias=False``: no conv biases), BN beta *and* gamma
(``tf.layers.batch_normalization`` defaults center=scale=True; moving statistics are not
trainable) and the dense kernel and bias. That is exactly torch's trainable parameters of
this module (conv bias=False, BN affine), so ``count_parameters`` matches the stored
``params`` to the last parameter, for all 30,001 labelled archs, *provided the cell is
encoded as NB-101 trained it* (:func:`official_encoding`): the channel split depends on
vertex order, so isomorphic encodings (same hash) can differ in parameter count.

The architecture key is ``(matrix, ops)`` as tuples; :func:`nb101_hash` is the benchmark's
own isomorphism-invariant module hash (the key of its dataset).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import torch
from torch import nn

from bench_data.paths import benchmark_file
from bench_data.spaces.base import ArchRecord, SearchSpace

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
# Order of config['available_ops']: the integer labels the hash uses.
CANONICAL_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
DATA_FILE = "nb101_nasbench_vis/nb101_30k_decoded.json"

Arch = tuple  # (matrix: tuple[tuple[int, ...], ...], ops: tuple[str, ...])


def make_arch(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Arch:
    """The hashable key ``(matrix as tuple of tuples, ops tuple)``."""
    return tuple(tuple(int(v) for v in row) for row in matrix), tuple(ops)


def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Arch:
    """Drop vertices not on an input -> output path (``ModelSpec._prune``).

    Raises ValueError when the input does not reach the output.
    """
    n = len(matrix)
    if len(ops) != n or any(len(row) != n for row in matrix):
        raise ValueError("matrix must be square and match len(ops)")
    if any(matrix[i][j] for i in range(n) for j in range(i + 1)):
        raise ValueError("matrix must be strictly upper triangular")
    from_input, from_output = {0}, {n - 1}
    for v in range(1, n):  # topological order: row index < column index
        if any(matrix[u][v] for u in from_input):
            from_input.add(v)
    for v in range(n - 2, -1, -1):
        if any(matrix[v][w] for w in from_output):
            from_output.add(v)
    keep = sorted(from_input & from_output)
    if len(keep) < 2 or keep[0] != 0 or keep[-1] != n - 1:
        raise ValueError("invalid NB-101 cell: the input does not reach the output")
    return tuple(tuple(int(matrix[i][j]) for j in keep) for i in keep), tuple(ops[i] for i in keep)


def nb101_hash(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """NB-101's module hash (``ModelSpec.hash_spec`` / ``graph_util.hash_module``).

    Iterated md5 over (out-degree, in-degree, op label) of each vertex, refined by its
    sorted in- and out-neighbour hashes once per vertex count; equal for isomorphic cells.
    Labels: input -1, output -2, else the index in :data:`CANONICAL_OPS`.
    """
    matrix, ops = prune(matrix, ops)
    n = len(matrix)
    labels = [-1] + [CANONICAL_OPS.index(op) for op in ops[1:-1]] + [-2]
    out_deg = [sum(row) for row in matrix]
    in_deg = [sum(matrix[u][v] for u in range(n)) for v in range(n)]
    # str() of the tuple, exactly as the reference formats it: "(1, 0, -1)".
    hashes = [hashlib.md5(str((o, i, l)).encode("utf-8")).hexdigest()
              for o, i, l in zip(out_deg, in_deg, labels)]
    for _ in range(n):
        hashes = [
            hashlib.md5((
                "".join(sorted(hashes[u] for u in range(n) if matrix[u][v])) + "|"
                + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w])) + "|"
                + hashes[v]
            ).encode("utf-8")).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def official_encoding(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Arch:
    """The encoding of this (pruned) cell that NB-101 actually trained.

    ``generate_graphs.py`` enumerates bitmasks (``bits``: edge u->v is bit u + v(v-1)/2) in
    increasing order and, within one, op labellings in lexicographic order, keeping the
    first encoding met per hash. So the trained encoding is the relabelling of the
    interior vertices (keeping the matrix upper triangular) with the smallest (bits,
    labels). It matters: the channel split gives the +1 channels to the lowest-numbered
    vertices feeding the output, so isomorphic encodings can differ in parameter count.
    """
    matrix, ops = prune(matrix, ops)
    n = len(ops)
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if matrix[u][v]]
    preds = [{u for u in range(1, v) if matrix[u][v]} for v in range(n)]
    labels = [CANONICAL_OPS.index(op) for op in ops[1:-1]]
    best_key, best_order = None, None

    def extend(order: list[int]) -> None:  # all topological orders of the interior
        nonlocal best_key, best_order
        if len(order) == n - 2:
            pos = {v: i for i, v in enumerate((0, *order, n - 1))}
            key = (sum(1 << (pos[u] + pos[v] * (pos[v] - 1) // 2) for u, v in edges),
                   [labels[v - 1] for v in order])
            if best_key is None or key < best_key:
                best_key, best_order = key, tuple(order)
            return
        for v in range(1, n - 1):
            if v not in order and preds[v].issubset(order):
                extend(order + [v])

    extend([])
    perm = (0, *best_order, n - 1)  # new position -> old vertex
    return (tuple(tuple(matrix[perm[i]][perm[j]] for j in range(n)) for i in range(n)),
            tuple(ops[v] for v in perm))


def compute_vertex_channels(c_in: int, c_out: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Output channels of every vertex of a pruned cell (the reference rule, see module doc)."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = c_in, c_out
    if n == 2:
        return channels
    # In-degree of the output, not counting the input (its projection is added, not concatenated).
    fan_in = sum(matrix[v][n - 1] for v in range(1, n - 1))
    share, extra = divmod(c_out, fan_in)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = share + (extra > 0)
            extra -= extra > 0
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


class ConvBNReLU(nn.Sequential):
    """conv (no bias, 'same' padding) - BN - ReLU, as ``base_ops.conv_bn_relu``."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            # TF momentum 0.997 is torch momentum 0.003; eps 1e-5 as in the reference.
            nn.BatchNorm2d(c_out, eps=1e-5, momentum=0.003),
            nn.ReLU(inplace=True),
        )


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == CONV3X3:
        return ConvBNReLU(channels, channels, 3)
    if op == CONV1X1:
        return ConvBNReLU(channels, channels, 1)
    if op == MAXPOOL3X3:
        # TF 'same' max-pooling ignores the padding, as torch's -inf padding does.
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB-101 op {op!r}")


class Cell(nn.Module):
    """One NB-101 module (``model_builder.build_module``) for a pruned (matrix, ops)."""

    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str], c_in: int, c_out: int):
        super().__init__()
        n = len(matrix)
        self.channels = compute_vertex_channels(c_in, c_out, matrix)
        # Per interior vertex: interior predecessors (summed after truncation) and whether it
        # reads the projected input.
        self.preds = [[u for u in range(1, t) if matrix[u][t]] for t in range(n - 1)]
        self.reads_input = [bool(matrix[0][t]) for t in range(n)]
        self.to_output = [t for t in range(1, n - 1) if matrix[t][n - 1]]
        self.ops = nn.ModuleList([nn.Identity()])  # index = vertex; 0 is the input
        self.proj = nn.ModuleDict()
        for t in range(1, n - 1):
            if self.reads_input[t]:
                self.proj[str(t)] = ConvBNReLU(c_in, self.channels[t], 1)
            self.ops.append(_vertex_op(ops[t], self.channels[t]))
        if self.reads_input[n - 1]:
            self.proj[str(n - 1)] = ConvBNReLU(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.channels)
        tensors = [x]
        for t in range(1, n - 1):
            c = self.channels[t]
            # Truncation drops at most one extra channel (a +1 from the uneven split).
            inputs = [tensors[u][:, :c] for u in self.preds[t]]
            if self.reads_input[t]:
                inputs.append(self.proj[str(t)](x))
            tensors.append(self.ops[t](sum(inputs[1:], inputs[0])))
        if not self.to_output:  # input -> output only
            return self.proj[str(n - 1)](x)
        out = torch.cat([tensors[t] for t in self.to_output], 1) if len(self.to_output) > 1 \
            else tensors[self.to_output[0]]
        if self.reads_input[n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """The NB-101 skeleton around one (pruned) cell spec."""

    def __init__(self, matrix, ops, num_classes: int = 10, stem_channels: int = 128,
                 num_stacks: int = 3, cells_per_stack: int = 3):
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU(3, stem_channels, 3)]
        c_in = channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                channels *= 2
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, ops, c_in, channels))
                c_in = channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class NB101Space(SearchSpace):
    """NAS-Bench-101 (423,624 unique cells). Keys are ``(matrix, ops)`` tuples."""

    name = "nb101"
    input_shape = (3, 32, 32)

    def __init__(self, num_classes: int = 10):
        self.num_classes = num_classes

    def build(self, arch: Arch) -> nn.Module:
        matrix, ops = prune(*arch)  # the benchmark builds the pruned spec
        return NB101Network(matrix, ops, self.num_classes)

    def to_onnx(self, arch: Arch):
        """Written directly (:mod:`bench_data.emitters.nb101`); tests prove the CG equals the traced one."""
        from bench_data.emitters.nb101 import emit

        return emit(*prune(*arch), num_classes=self.num_classes)

    def canonical_key(self, arch: Arch) -> str:
        """NB-101's module hash. Equal for isomorphic encodings, which may still build with
        different channel splits; :func:`official_encoding` gives the trained one."""
        return nb101_hash(*arch)


def load_records(root: str | os.PathLike | None = None) -> list[ArchRecord]:
    """The 30,001 decoded NB-101 architectures (``index`` = position in the file).

    ``arch`` is :func:`official_encoding` of the file's matrix: the decoder kept another
    isomorphic encoding for 808 archs, and for 527 of them that one has a different
    channel split and parameter count from the network NB-101 trained.

    Targets: ``val_acc_4`` / ``_12`` / ``_36`` / ``_108`` (validation accuracy, percent,
    after that many epochs; one training run) and ``train_time_108`` (seconds).
    ``stored_params`` is the benchmark's ``trainable_parameters``.
    """
    with open(benchmark_file(DATA_FILE, root)) as f:
        rows = json.load(f)
    records = []
    for index, row in enumerate(rows):
        targets = {f"val_acc_{e}": 100.0 * row[f"val_acc_{e}"] for e in (4, 12, 36, 108)}
        targets["train_time_108"] = row["train_time_108"]
        records.append(ArchRecord(
            arch=official_encoding(row["matrix"], row["ops"]),
            targets=targets,
            stored_params=row["params"],
            index=index,
        ))
    return records


__all__: Sequence[str] = [
    "NB101Space", "NB101Network", "Cell", "nb101_hash", "prune", "make_arch", "official_encoding",
    "compute_vertex_channels", "load_records",
]
