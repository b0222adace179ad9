"""ENAS macro search space, 6 layers, as encoded by D-VAE.

Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018
(``src/cifar10/general_child.py``, macro space, whole-channel search); Zhang et al.,
"D-VAE: A Variational Autoencoder for Directed Acyclic Graphs", NeurIPS 2019, whose
``data/final_structures6.txt`` holds 20,020 6-layer archs with their accuracy.

Architecture key -- D-VAE's nested list as a tuple of tuples: layer i (0..5) is
``(op, b_0, ..., b_{i-1})`` with op 0 conv3x3, 1 sep3x3, 2 conv5x5, 3 sep5x5, 4 avgpool,
5 maxpool (:data:`OPS`); layer i always reads layer i-1 (the stem for i=0) and ``b_j = 1``
adds a skip from vertex j (j=0 the stem output, j>0 layer j-1). Example::

    ((1,), (4, 0), (5, 0, 0), (0, 1, 1, 1), (2, 1, 1, 1, 1), (3, 0, 0, 0, 0, 1))

Network (``skip_mode="sum"``, default): the ENAS *shared-weights child* that produced the
labels -- D-VAE evaluated every arch inside an ENAS supernet trained with
``--child_num_layers=6 --child_out_filters=36`` (``scripts/cifar10_6_eval.sh``), so the
labels are weight-sharing CIFAR-10 validation accuracies. Its layers are
``_enas_layer``: conv ops are 1x1 conv-BN-ReLU then kxk (separable for sep) conv-BN-ReLU,
pool ops are 1x1 conv-BN-ReLU then a 3x3 stride-1 pool; the skipped-in earlier layers are
summed with the op output and batch-normalised. The width stays 36 everywhere; after
layers 1 and 3 every stored layer is halved in resolution by a factorized reduction.
Stem: conv3x3 + BN; head: global average pool and a bias-free linear layer.

``skip_mode="concat"`` gives the stand-alone ENAS child instead (``_fixed_layer``): the
skipped layers are concatenated with the output, then ReLU-conv1x1-BN, and the width
doubles at each reduction. We keep the same layer ops in both modes; the reference
``_fixed_layer`` differs there (it builds sep3x3/sep5x5 as plain convs and pools without
the 1x1 conv), which we do not copy. No parameter count is stored for this benchmark.
"""
from __future__ import annotations

import ast
from typing import Any

import torch
from torch import nn

from ..paths import benchmark_file
from .base import ArchRecord, SearchSpace
from .blocks import ConvBNAct, FactorizedReduce, depthwise_separable

OPS = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool", "maxpool")
DATA_FILE = "enas_macro_dvae/final_structures6.txt"
NUM_LAYERS = 6
REDUCE_AFTER = (NUM_LAYERS // 3 - 1, 2 * NUM_LAYERS // 3 - 1)  # ENAS ``pool_layers``: (1, 3)

EnasArch = tuple[tuple[int, ...], ...]


def layer_op(op: int, c_in: int, c: int) -> nn.Sequential:
    """The branch of ENAS ``_enas_layer`` selected by ``op`` (whole-channel search)."""
    name = OPS[op]
    head = ConvBNAct(c_in, c, 1)  # every branch starts with conv1x1-BN-ReLU
    if name.startswith("conv"):
        return nn.Sequential(head, ConvBNAct(c, c, int(name[-1])))
    if name.startswith("sep"):
        k = int(name[-1])
        return nn.Sequential(head, *depthwise_separable(c, c, k), nn.BatchNorm2d(c), nn.ReLU())
    pool = (nn.AvgPool2d(3, 1, 1, count_include_pad=False) if name == "avgpool"
            else nn.MaxPool2d(3, 1, 1))
    return nn.Sequential(head, pool)


class EnasLayer(nn.Module):
    """One macro layer: op on the previous layer, then merge the chosen skip inputs."""

    def __init__(self, spec: tuple[int, ...], c: int, skip_mode: str):
        super().__init__()
        self.op = layer_op(spec[0], c, c)
        self.skips = [j for j, bit in enumerate(spec[1:]) if bit]
        self.skip_mode = skip_mode
        self.merge: nn.Module | None = None
        if len(spec) > 1:  # ENAS merges (and normalises) for every layer but the first
            if skip_mode == "sum":
                self.merge = nn.BatchNorm2d(c)
            else:
                self.merge = nn.Sequential(nn.ReLU(), nn.Conv2d((len(self.skips) + 1) * c, c, 1,
                                                                bias=False), nn.BatchNorm2d(c))

    def forward(self, prev: list[torch.Tensor]) -> torch.Tensor:
        out = self.op(prev[-1])
        if self.merge is None:
            return out
        inputs = [prev[j] for j in self.skips]
        if self.skip_mode == "sum":
            return self.merge(sum(inputs, out))
        return self.merge(torch.cat(inputs + [out], dim=1))


class EnasMacroNet(nn.Module):
    """Stem, six :class:`EnasLayer` with two reductions, global pool, linear head."""

    def __init__(self, arch: EnasArch, out_filters: int = 36, skip_mode: str = "sum",
                 num_classes: int = 10):
        super().__init__()
        c = out_filters
        self.stem = ConvBNAct(3, c, 3, act=None)
        self.layers = nn.ModuleList()
        self.reductions = nn.ModuleDict()
        for i, spec in enumerate(arch):
            self.layers.append(EnasLayer(spec, c, skip_mode))
            if i in REDUCE_AFTER:
                c_new = 2 * c if skip_mode == "concat" else c  # the supernet keeps its width
                # one reduction per stored tensor: the stem and layers 0..i
                self.reductions[str(i)] = nn.ModuleList(
                    FactorizedReduce(c, c_new, relu=False) for _ in range(i + 2))
                c = c_new
        self.classifier = nn.Linear(c, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = [self.stem(x)]
        for i, layer in enumerate(self.layers):
            prev.append(layer(prev))
            if str(i) in self.reductions:
                prev = [reduce(t) for reduce, t in zip(self.reductions[str(i)], prev)]
        return self.classifier(prev[-1].mean((2, 3)))


def parse_arch(arch: Any) -> EnasArch:
    """D-VAE's nested list (or its string) as a validated tuple of tuples."""
    if isinstance(arch, str):
        arch = ast.literal_eval(arch)
    parsed = tuple(tuple(int(v) for v in layer) for layer in arch)
    if len(parsed) != NUM_LAYERS:
        raise ValueError(f"expected {NUM_LAYERS} layers, got {arch!r}")
    for i, layer in enumerate(parsed):
        if len(layer) != i + 1 or not 0 <= layer[0] < len(OPS) or any(b not in (0, 1)
                                                                        for b in layer[1:]):
            raise ValueError(f"invalid layer {i} {layer!r} in {arch!r}")
    return parsed


class EnasMacroSpace(SearchSpace):
    """ENAS 6-layer macro space (D-VAE encoding); see the module docstring."""

    name = "enas_macro6"
    input_shape = (3, 32, 32)
    num_classes = 10

    def __init__(self, out_filters: int = 36, skip_mode: str = "sum"):
        if skip_mode not in ("sum", "concat"):
            raise ValueError("skip_mode must be 'sum' (supernet child) or 'concat' (fixed child)")
        self.out_filters, self.skip_mode = out_filters, skip_mode

    def build(self, arch: Any) -> nn.Module:
        return EnasMacroNet(parse_arch(arch), self.out_filters, self.skip_mode, self.num_classes)

    def load_records(self, root=None) -> list[ArchRecord]:
        """All 20,020 lines (20,015 distinct archs; duplicates kept, ``index`` = line number).
        Target ``"acc"``: weight-sharing CIFAR-10 validation accuracy in percent (~70-75; the
        file's fraction is kept as ``"ws_val_acc"``). No parameter count is stored."""
        records = []
        with open(benchmark_file(DATA_FILE, root)) as f:
            for index, line in enumerate(f):
                if line.strip():
                    arch, acc = ast.literal_eval(line.strip())
                    records.append(ArchRecord(parse_arch(arch), {"acc": 100 * float(acc), "ws_val_acc": float(acc)},
                                              index=index))
        return records
