"""FBNet search space as used by HW-NAS-Bench and HELP (ImageNet setting).

Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural
Architecture Search", CVPR 2019; Li et al., "HW-NAS-Bench: Hardware-Aware Neural
Architecture Search Benchmark", ICLR 2021 (``hw_nas_bench_api.fbnet_get_metrics`` defines the
macro skeleton); Lee et al., "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS
via Meta-Learning", NeurIPS 2021 (latencies in ``help_latency/fbnet_latency_derived.csv``).

Architecture key -- a tuple of 22 op names, one per searchable block, from :data:`OPS`
(``k{3,5}_e{1,3,6}`` = kernel and expansion, ``_g2`` = grouped 1x1 convs, ``skip``); the
HELP csv joins them with ``-``. Example: ``("k5_e6", "skip", "k3_e1_g2", ...)``.

Network (HW-NAS-Bench ImageNet setting): stem conv3x3/2 to 16 + BN + ReLU; 7 stages of
1, 4, 4, 4, 4, 4, 1 blocks with widths 16, 24, 32, 64, 112, 184, 352 and first-block strides
1, 2, 2, 2, 1, 2, 1; head conv1x1 to 1984 + BN + ReLU, global average pool, linear to 1000.
A ``ConvBlock`` is grouped 1x1 expand (C_in x e) + BN + ReLU, channel shuffle when grouped,
depthwise kxk (stride) + BN + ReLU, grouped 1x1 project + BN, identity added when the shape
is unchanged (the expansion conv exists even at e=1). ``skip`` is the identity, or a
conv1x1 (stride) + BN + ReLU where the shape changes. These block definitions follow the
GATECH-EIC FBNet ops (``ConvBlock`` / ``Skip`` / ``ConvNorm``) whose names key the
HW-NAS-Bench lookup tables. Labels are latencies only, so no parameter count is stored.
"""
from __future__ import annotations

import csv
from typing import Any

from torch import nn

from ..paths import benchmark_file
from .base import ArchRecord, SearchSpace
from .blocks import ConvBNAct, MBConv

OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STEM_CHANNELS = 16
STAGE_DEPTHS = (1, 4, 4, 4, 4, 4, 1)
STAGE_WIDTHS = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
HEAD_CHANNELS = 1984
DATA_FILE = "help_latency/fbnet_latency_derived.csv"


def fbnet_block(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """HW-NAS-Bench ``ConvBlock`` or ``Skip`` for an op name of :data:`OPS`."""
    if op == "skip":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return ConvBNAct(c_in, c_out, 1, stride=stride)
    parts = op.split("_")  # e.g. ["k5", "e1", "g2"]
    kernel, expansion = int(parts[0][1:]), int(parts[1][1:])
    groups = int(parts[2][1:]) if len(parts) > 2 else 1
    return MBConv(c_in, c_out, kernel, stride, mid=c_in * expansion, groups=groups)


class FBNet(nn.Module):
    def __init__(self, ops: tuple[str, ...], num_classes: int = 1000):
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2)
        blocks, c_in, k = [], STEM_CHANNELS, 0
        for depth, width, stride in zip(STAGE_DEPTHS, STAGE_WIDTHS, STAGE_STRIDES):
            for i in range(depth):
                blocks.append(fbnet_block(ops[k], c_in, width, stride if i == 0 else 1))
                c_in, k = width, k + 1
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(c_in, HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x):
        return self.classifier(self.head(self.blocks(self.stem(x))).mean((2, 3)))


def parse_arch(arch: Any) -> tuple[str, ...]:
    """Tuple of 22 op names (accepts the HELP ``-``-joined string)."""
    ops = tuple(arch.split("-")) if isinstance(arch, str) else tuple(arch)
    if len(ops) != sum(STAGE_DEPTHS) or any(op not in OPS for op in ops):
        raise ValueError(f"expected {sum(STAGE_DEPTHS)} ops from {OPS}, got {arch!r}")
    return ops


class FBNetSpace(SearchSpace):
    """FBNet space, HW-NAS-Bench ImageNet skeleton (224x224 input, 1000 classes)."""

    name = "fbnet"
    input_shape = (3, 224, 224)
    num_classes = 1000

    def build(self, arch: Any) -> nn.Module:
        return FBNet(parse_arch(arch), self.num_classes)

    def load_records(self, root=None) -> list[ArchRecord]:
        """5,000 archs sampled by HELP; targets ``"latency:<device>"`` in ms for 27
        device/batch settings (e.g. ``latency:pixel3``, ``latency:1080ti_32``)."""
        records = []
        with open(benchmark_file(DATA_FILE, root), newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            devices = header[2:]
            for row in reader:
                targets = {f"latency:{d}": float(v) for d, v in zip(devices, row[2:]) if v != ""}
                records.append(ArchRecord(parse_arch(row[1]), targets, index=int(row[0])))
        return records
