"""TransNAS-Bench-101 micro (cell) and macro (skeleton) search spaces.

Duan et al., "TransNAS-Bench-101: Improving Transferability and Generalizability of
Cross-Task Neural Architecture Search", CVPR 2021 (code: ``models/net_infer`` of the TNB-101
release, vendored in NASLib as ``search_spaces/transbench101/tnb101``). Labels: the NASLib
zero-cost subsets ``naslib_zc/zc_transbench101_{micro,macro}_subset.json``.

Architecture keys (NASLib's, as in the label files):

* micro -- a 6-tuple ``(a, b, c, d, e, f)`` of op digits 0=none, 1=skip, 2=ReLU-conv1x1-BN,
  3=ReLU-conv3x3-BN on the cell edges 0->1 | 0->2, 1->2 | 0->3, 1->3, 2->3; TNB string
  ``64-41414-a_bc_def`` (see :func:`micro_string`). The skeleton is fixed: 5 modules of 2
  cells, codes 4,1,4,1,4.
* macro -- a 6-tuple of module codes padded with 0, e.g. ``(1, 2, 4, 2, 0, 0)``; TNB string
  ``64-1242-basic`` (see :func:`macro_string`). Code 1 keeps the shape, 2 doubles channels,
  3 halves resolution, 4 does both; every module is 2 ResNet basic blocks.

Network: TNB-101 ``MacroNet(structure='backbone')`` encoder (stem: conv3x3/2 to 32 + BN,
ReLU-conv3x3/2-BN to 64) followed by the decoder of the task, as built by TNB-101's
``model_builder.create_model``: a linear classifier for class_scene (63 classes),
class_object (100) and room_layout (9 outputs); a Siamese net over 9 tiles with a linear
head for jigsaw (1000 permutations); the 8-layer conv/deconv ``SegmentationDecoder`` (17
classes) for segmentsemantic and the pix2pix ``GenerativeDecoder`` for autoencoder/normal
(their GAN discriminator is never run in forward and is not part of the model).

Parameter count: the stored ``params`` counts exactly this encoder + task decoder (NASLib's
tensorwatch count of the modules run in forward). The build reproduces it for **all seven
tasks** of both spaces; ``with_decoder=False`` gives the bare encoder.
"""
from __future__ import annotations

import ast
import json
from typing import Any, Sequence

import torch
from torch import nn

from ..paths import benchmark_file
from .base import ArchRecord, SearchSpace
from .blocks import FactorizedReduce, ReLUConvBN, Zero
from .darts import naslib_zc_record

TASKS = ("class_scene", "class_object", "room_layout", "jigsaw", "segmentsemantic",
         "autoencoder", "normal")
# Output size of the linear heads (TNB-101 model_builder).
LINEAR_OUT = {"class_scene": 63, "class_object": 100, "room_layout": 9, "jigsaw": 1000}
SEGMENT_CLASSES = 17
JIGSAW_TILES = 9
IMAGE_SIZE = 256       # Taskonomy images are 256x256; the dense decoders output that size
JIGSAW_TILE_SIZE = 64  # an assumption: only the channel count of a tile matters for the build
MICRO_SKELETON = "41414"
BASE_CHANNELS = 64


def micro_string(arch: Sequence[int]) -> str:
    """``(a,b,c,d,e,f)`` -> ``'64-41414-a_bc_def'``."""
    a, b, c, d, e, f = (int(x) for x in arch)
    return f"{BASE_CHANNELS}-{MICRO_SKELETON}-{a}_{b}{c}_{d}{e}{f}"


def macro_string(arch: Sequence[int]) -> str:
    """``(1, 2, 4, 2, 0, 0)`` -> ``'64-1242-basic'`` (zeros are padding)."""
    return f"{BASE_CHANNELS}-{''.join(str(int(x)) for x in arch if int(x) != 0)}-basic"


def _edge_op(digit: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """TNB-101 micro-cell op (``net_ops/cell_ops.OPS``)."""
    if digit == "0":
        return Zero(c_out, stride)
    if digit == "1":
        return (nn.Identity() if stride == 1 and c_in == c_out
                else FactorizedReduce(c_in, c_out, stride))
    if digit == "2":
        return ReLUConvBN(c_in, c_out, 1, stride, padding=0)
    if digit == "3":
        return ReLUConvBN(c_in, c_out, 3, stride, padding=1)
    raise ValueError(f"unknown TNB-101 op digit {digit!r}")


class MicroCell(nn.Module):
    """Densely connected 4-node cell; node j sums op(node i) over i < j. Edges leaving the
    input carry the stride and channel change, the others map c_out -> c_out."""

    def __init__(self, code: Sequence[str], c_in: int, c_out: int, stride: int):
        super().__init__()
        self.sources: list[int] = []
        ops = []
        for node, digits in enumerate(code, start=1):
            for src, digit in enumerate(digits):
                ops.append(_edge_op(digit, c_in, c_out, stride) if src == 0
                           else _edge_op(digit, c_out, c_out, 1))
                self.sources.append(src)
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for node in range(1, 4):
            total = 0
            for _ in range(node):
                total = total + self.ops[k](nodes[self.sources[k]])
                k += 1
            nodes.append(total)
        return nodes[-1]


class BasicBlock(nn.Module):
    """TNB-101 ``ResNetBasicblock``: two ReLU-conv3x3-BN plus a (projected) identity."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class Encoder(nn.Module):
    """TNB-101 ``MacroNet`` backbone: stem, then one 2-cell module per skeleton digit."""

    def __init__(self, skeleton: str, cell_code: Sequence[str] | None):
        super().__init__()
        c = BASE_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(c // 2), ReLUConvBN(c // 2, c, 3, 2))
        modules, self.downsamples = [], 2
        for digit in skeleton:
            code = int(digit)
            c_out, stride = (2 * c if code % 2 == 0 else c), (2 if code > 2 else 1)
            self.downsamples += stride == 2
            for i in range(2):
                s, ci = (stride, c) if i == 0 else (1, c_out)
                modules.append(MicroCell(cell_code, ci, c_out, s) if cell_code is not None
                               else BasicBlock(ci, c_out, s))
            c = c_out
        self.layers = nn.Sequential(*modules)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class LinearHead(nn.Sequential):
    """TNB-101 ``FFDecoder`` / ``SiameseDecoder``: global average pool and a linear layer."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, c_out))


class Siamese(nn.Module):
    """Jigsaw model: the shared encoder on each of 9 tiles, features concatenated.
    Input (N, 9, 3, H, W)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.encoder(x[:, i]) for i in range(x.shape[1])]
        return self.head(torch.cat(feats, dim=1))


def _conv(c_in: int, c_out: int, act: nn.Module | None, bn: bool = True) -> nn.Sequential:
    """TNB-101 decoder ``ConvLayer``: biased conv3x3, BN, activation."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)]
    layers += [nn.BatchNorm2d(c_out)] if bn else []
    layers += [act] if act is not None else []
    return nn.Sequential(*layers)


def _deconv(c_in: int, c_out: int) -> nn.Sequential:
    """TNB-101 decoder ``DeconvLayer``: biased 2x transposed conv3x3, BN, LeakyReLU."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1,
                                            output_padding=1),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2))


def segmentation_decoder(c_in: int, n_up: int, n_classes: int = SEGMENT_CLASSES) -> nn.Sequential:
    """TNB-101 ``SegmentationDecoder``: n_up 2x upsamplings from the encoder resolution."""
    lrelu = lambda: nn.LeakyReLU(0.2)  # noqa: E731
    layers, c = [_conv(c_in, 1024, lrelu())], 1024
    for _ in range(6 - n_up):
        layers.append(_conv(c, c // 2, lrelu()))
        c //= 2
    for _ in range(n_up - 1):
        layers.append(_deconv(c, c // 2))
        c //= 2
    layers += [_deconv(c, c), _conv(c, n_classes, None, bn=False)]
    return nn.Sequential(*layers)


def generative_decoder(c_in: int, n_up: int) -> nn.Sequential:
    """TNB-101 ``GenerativeDecoder`` (pix2pix generator half), 3-channel tanh output."""
    lrelu = lambda: nn.LeakyReLU(0.2)  # noqa: E731

    def up_or_conv(upsample: bool, ci: int, co: int) -> nn.Sequential:
        return _deconv(ci, co) if upsample else _conv(ci, co, lrelu())

    return nn.Sequential(
        _conv(c_in, 1024, lrelu()), _conv(1024, 1024, lrelu()),
        up_or_conv(n_up == 6, 1024, 512), _conv(512, 512, lrelu()),
        up_or_conv(n_up >= 5, 512, 256), _conv(256, 128, lrelu()),
        up_or_conv(n_up >= 4, 128, 64), _conv(64, 64, lrelu()),
        up_or_conv(n_up >= 3, 64, 32), _conv(32, 32, lrelu()),
        _deconv(32, 16), _conv(16, 32, lrelu()), _deconv(32, 16),
        _conv(16, 3, nn.Tanh(), bn=False),
    )


class TaskNet(nn.Sequential):
    """Encoder followed by a decoder (class, room_layout and the dense tasks)."""


def build_task_net(encoder: Encoder, task: str, with_decoder: bool = True) -> nn.Module:
    if not with_decoder:
        return encoder
    c = encoder.out_channels
    if task == "jigsaw":
        return Siamese(encoder, LinearHead(c * JIGSAW_TILES, LINEAR_OUT[task]))
    if task in LINEAR_OUT:
        return TaskNet(encoder, LinearHead(c, LINEAR_OUT[task]))
    # Dense tasks: one 2x upsampling per 2x downsampling of the encoder, back to 256x256
    # (TNB-101 derives the same number as log2(256 / feature width)).
    n_up = encoder.downsamples
    if task == "segmentsemantic":
        return TaskNet(encoder, segmentation_decoder(c, n_up))
    if task in ("autoencoder", "normal"):
        return TaskNet(encoder, generative_decoder(c, n_up))
    raise ValueError(f"unknown TNB-101 task {task!r}; expected one of {TASKS}")


def _parse_tuple(arch: Any) -> tuple[int, ...]:
    if isinstance(arch, str):
        arch = ast.literal_eval(arch)
    return tuple(int(x) for x in arch)


class _TransNASSpace(SearchSpace):
    """Shared task handling and label loading of the micro and macro spaces."""

    variant = ""

    def __init__(self, task: str = "class_scene", with_decoder: bool = True):
        if task not in TASKS:
            raise ValueError(f"unknown TNB-101 task {task!r}; expected one of {TASKS}")
        self.task, self.with_decoder = task, with_decoder
        self.input_shape = ((JIGSAW_TILES, 3, JIGSAW_TILE_SIZE, JIGSAW_TILE_SIZE)
                            if task == "jigsaw" and with_decoder else (3, IMAGE_SIZE, IMAGE_SIZE))
        self.num_classes = LINEAR_OUT.get(task, SEGMENT_CLASSES if task == "segmentsemantic" else 3)

    def encoder(self, arch: Any) -> Encoder:
        raise NotImplementedError

    def build(self, arch: Any) -> nn.Module:
        return build_task_net(self.encoder(arch), self.task, self.with_decoder)

    def load_records(self, root=None, task: str | None = None) -> list[ArchRecord]:
        """Labelled archs of one task (default: the space's task). Target ``<task>`` is
        TNB-101's validation metric: top-1 % for class_scene / class_object / jigsaw, SSIM
        for autoencoder / normal, negative L2 loss for room_layout, pixel accuracy-like %
        for segmentsemantic. Zero-cost measures are ``"zc:<name>"`` (NASLib's failed-score
        sentinel -1e8 is dropped: all of epe_nas for most tasks, jacov for 20 micro archs).
        ``stored_params`` counts encoder + decoder of that task."""
        task = task or self.task
        if task not in TASKS:
            raise ValueError(f"unknown TNB-101 task {task!r}; expected one of {TASKS}")
        path = benchmark_file(f"naslib_zc/zc_transbench101_{self.variant}_subset.json", root)
        with open(path) as f:
            table = json.load(f)[task]
        return [naslib_zc_record(_parse_tuple(key), entry, task) for key, entry in table.items()]


class TransNASMicroSpace(_TransNASSpace):
    """TNB-101 micro (cell) space; key ``(a, b, c, d, e, f)``, see the module docstring."""

    name = "transnas_micro"
    variant = "micro"

    def encoder(self, arch: Any) -> Encoder:
        digits = _parse_tuple(arch) if not (isinstance(arch, str) and "-" in arch) else None
        string = micro_string(digits) if digits is not None else arch
        _, skeleton, cell = string.split("-")
        code = cell.split("_")
        if [len(c) for c in code] != [1, 2, 3] or any(d not in "0123" for d in "".join(code)):
            raise ValueError(f"invalid TNB-101 micro architecture {arch!r}")
        return Encoder(skeleton, code)


class TransNASMacroSpace(_TransNASSpace):
    """TNB-101 macro space; key: module codes padded with 0, see the module docstring."""

    name = "transnas_macro"
    variant = "macro"

    def encoder(self, arch: Any) -> Encoder:
        string = arch if isinstance(arch, str) and "-" in arch else macro_string(_parse_tuple(arch))
        _, skeleton, cell = string.split("-")
        if cell != "basic" or not skeleton or any(d not in "1234" for d in skeleton):
            raise ValueError(f"invalid TNB-101 macro architecture {arch!r}")
        return Encoder(skeleton, None)

    def canonical_key(self, arch: Any) -> str:
        return arch if isinstance(arch, str) and "-" in arch else macro_string(_parse_tuple(arch))
