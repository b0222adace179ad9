"""Once-for-All MobileNetV3 search space (width multiplier 1.0).

Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment",
ICLR 2020 (``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py``, supernet
``ofa_mbv3_d234_e346_k357_w1.0``); latencies from Lee et al., "HELP", NeurIPS 2021
(``help_latency/ofa_latency_derived.json``).

Architecture key -- ``(ks, e, d, r)``: ``ks`` and ``e`` are 20-tuples (4 block slots for each
of the 5 elastic stages) of kernel sizes {3, 5, 7} and expand ratios {3, 4, 6}; ``d`` is a
5-tuple of stage depths {2, 3, 4} (stage s uses its first ``d[s]`` slots, the other slots'
``ks``/``e`` are ignored); ``r`` is the input resolution (128..224). :meth:`OFAMobileNetV3Space.
canonical_key` blanks the unused slots.

Network (the extracted OFA subnet): stem conv3x3/2 to 16 + BN + h-swish; a fixed first block
(dw3x3 16->16 + BN + ReLU, 1x1 + BN, identity); 5 stages of widths 24, 40, 80, 112, 160,
strides 2, 2, 2, 1, 2, activations ReLU, ReLU, h-swish, h-swish, h-swish, SE in stages 2, 4
and 5. A block is an MBConv with middle width ``make_divisible(C_in * e, 8)`` and SE width
``make_divisible(mid // 4, 8)``. Head: conv1x1 to 960 + BN + h-swish, global average pool,
conv1x1 to 1280 (no BN, no bias) + h-swish, linear to 1000 (dropout omitted: eval mode).
Labels are latencies only, so no parameter count is stored.
"""
from __future__ import annotations

import json
from typing import Any

from torch import nn

from ..paths import benchmark_file
from .base import ArchRecord, SearchSpace
from .blocks import ConvBNAct, MBConv, make_divisible

STAGE_WIDTHS = (24, 40, 80, 112, 160)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = (nn.ReLU, nn.ReLU, nn.Hardswish, nn.Hardswish, nn.Hardswish)
STAGE_SE = (False, True, False, True, True)
MAX_DEPTH = 4
STEM_CHANNELS = 16
FINAL_EXPAND, LAST_CHANNEL = 960, 1280
SE_REDUCTION = 4
KERNELS, EXPANDS, DEPTHS = (3, 5, 7), (3, 4, 6), (2, 3, 4)
DATA_FILE = "help_latency/ofa_latency_derived.json"

OFAArch = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]


class OFAMobileNetV3(nn.Module):
    def __init__(self, ks, e, d, num_classes: int = 1000):
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stride=2, act=nn.Hardswish)
        blocks: list[nn.Module] = [MBConv(STEM_CHANNELS, 16, 3, 1, mid=STEM_CHANNELS,
                                          expand=False)]
        c_in = 16
        for s, (width, stride, act, se) in enumerate(zip(STAGE_WIDTHS, STAGE_STRIDES,
                                                         STAGE_ACTS, STAGE_SE)):
            for i in range(d[s]):
                slot = s * MAX_DEPTH + i
                mid = make_divisible(c_in * e[slot], 8)
                se_mid = make_divisible(mid // SE_REDUCTION, 8) if se else 0
                blocks.append(MBConv(c_in, width, ks[slot], stride if i == 0 else 1, mid,
                                     act=act, se_mid=se_mid))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = ConvBNAct(c_in, FINAL_EXPAND, 1, act=nn.Hardswish)
        self.feature_mix = ConvBNAct(FINAL_EXPAND, LAST_CHANNEL, 1, act=nn.Hardswish, bn=False)
        self.classifier = nn.Linear(LAST_CHANNEL, num_classes)

    def forward(self, x):
        x = self.final_expand(self.blocks(self.stem(x))).mean((2, 3), keepdim=True)
        return self.classifier(self.feature_mix(x).flatten(1))


def parse_arch(arch: Any) -> OFAArch:
    """``(ks, e, d, r)`` from a tuple or a HELP record dict (keys ks, e, d, r)."""
    if isinstance(arch, dict):
        arch = (arch["ks"], arch["e"], arch["d"], arch["r"])
    ks, e, d, r = arch
    ks, e, d, r = tuple(map(int, ks)), tuple(map(int, e)), tuple(map(int, d)), int(r)
    n_slots = MAX_DEPTH * len(STAGE_WIDTHS)
    if (len(ks) != n_slots or len(e) != n_slots or len(d) != len(STAGE_WIDTHS)
            or not set(ks) <= set(KERNELS) or not set(e) <= set(EXPANDS)
            or not set(d) <= set(DEPTHS) or r <= 0):
        raise ValueError(f"invalid OFA-MobileNetV3 architecture {arch!r}")
    return ks, e, d, r


class OFAMobileNetV3Space(SearchSpace):
    """OFA-MobileNetV3 w1.0 subnets at resolution ``r`` (ImageNet, 1000 classes)."""

    name = "ofa_mbv3"
    input_shape = (3, 224, 224)  # the largest resolution; an arch is exported at its own ``r``
    num_classes = 1000

    def build(self, arch: Any) -> nn.Module:
        ks, e, d, _ = parse_arch(arch)
        return OFAMobileNetV3(ks, e, d, self.num_classes)

    def arch_input_shape(self, arch: Any) -> tuple[int, int, int]:
        """The input the latency was measured at: (3, r, r)."""
        r = parse_arch(arch)[3]
        return (3, r, r)

    def canonical_key(self, arch: Any) -> OFAArch:
        # Slots beyond a stage's depth are not built: zero them so equal nets compare equal.
        ks, e, d, r = parse_arch(arch)
        used = [i < depth for depth in d for i in range(MAX_DEPTH)]
        return (tuple(k if u else 0 for k, u in zip(ks, used)),
                tuple(x if u else 0 for x, u in zip(e, used)), d, r)

    def load_records(self, root=None) -> list[ArchRecord]:
        """5,000 subnets sampled by HELP; targets ``"latency:<device>"`` in ms for 12 GPU
        settings (2080ti, titan_rtx, titanxp, v100 at batch 1 / 32 / 64). HELP's OFA files spell
        the Titan Xp ``titan_xp``; it is renamed ``titanxp`` as in its NB-201 and FBNet files, so
        one device has one name across spaces."""
        with open(benchmark_file(DATA_FILE, root)) as f:
            archs = json.load(f)["archs"]
        return [ArchRecord(parse_arch(a),
                           {f"latency:{dev.replace('titan_xp', 'titanxp')}": float(v) for dev, v in a["latency_ms"].items()},
                           index=int(a["idx"]))
                for a in archs]
