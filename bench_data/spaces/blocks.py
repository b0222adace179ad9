"""Building blocks shared by several search spaces.

Each block is defined once here and parameterised by the few knobs in which the benchmarks
differ (BN affinity, activation, grouping, whether an expansion conv exists). Space modules
compose these blocks; anything used by a single space lives in that space's module.

Every block builds its layers in ``__init__`` only from sizes (no tensor arithmetic), so a
space can be instantiated under ``torch.device("meta")`` to count parameters cheaply.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Act = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going 10 % below it.

    The MobileNet / OFA channel rule (``ofa.utils.make_divisible``).
    """
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BN: the pre-activation unit of DARTS, TNB-101 and ENAS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1,
                 padding: int | None = None, affine: bool = True):
        padding = kernel // 2 if padding is None else padding
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class ConvBNAct(nn.Sequential):
    """Conv -> [BN] -> [activation]: stems, heads, FBNet ``ConvNorm`` and OFA ``ConvLayer``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: Act | None = nn.ReLU, bn: bool = True, bias: bool = False):
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride=stride,
                                             padding=kernel // 2, groups=groups, bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(c_out))
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


def depthwise_separable(c_in: int, c_out: int, kernel: int, stride: int = 1,
                        dilation: int = 1) -> list[nn.Module]:
    """Depthwise kxk conv then pointwise 1x1 conv, no norm/activation (callers add them)."""
    padding = dilation * (kernel - 1) // 2
    return [
        nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                  groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    ]


class SepConv(nn.Sequential):
    """DARTS ``sep_conv_kxk``: (ReLU, dw-sep conv, BN) applied twice; only the first strides."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False), *depthwise_separable(c_in, c_in, kernel, stride),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False), *depthwise_separable(c_in, c_out, kernel, 1),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """DARTS ``dil_conv_kxk``: ReLU, dilated (rate 2) dw-sep conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False), *depthwise_separable(c_in, c_out, kernel, stride, dilation=2),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1x1 convs, concatenated, then BN.

    Used by DARTS (``skip_connect`` in reduction cells, preprocessing after a reduction), by
    TNB-101 (``skip`` with stride 2) and by ENAS (pooling of earlier layers). The second path
    is shifted by one pixel; we zero-pad right/bottom first (as TNB-101 and ENAS do), which
    gives DARTS's result on even sizes and still works on odd ones. ENAS has no leading ReLU.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 2, affine: bool = True,
                 relu: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False) if relu else nn.Identity()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=stride, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (channels and stride may change)."""

    def __init__(self, c_out: int, stride: int = 1):
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :1, :: self.stride, :: self.stride]
        return x.mul(0.0).expand(-1, self.c_out, -1, -1)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle, mixing the groups of a grouped 1x1 conv."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with 1x1 convs (biased) and a hard-sigmoid gate (MobileNetV3)."""

    def __init__(self, channels: int, mid: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class MBConv(nn.Module):
    """Inverted-residual block: [1x1 expand] -> dw kxk -> [SE] -> 1x1 project (+ identity).

    Covers FBNet's ``ConvBlock`` (grouped 1x1 convs + channel shuffle, expansion conv present
    even at e=1, ReLU) and OFA/MobileNetV3's ``MBConvLayer`` (no expansion conv at e=1,
    ReLU or h-swish, optional SE). The identity is added when stride is 1 and the channel
    count is unchanged, as in both references.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, mid: int,
                 act: Act = nn.ReLU, groups: int = 1, expand: bool = True, se_mid: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        if expand:
            layers.append(ConvBNAct(c_in, mid, 1, groups=groups, act=act))
            if groups > 1:
                layers.append(ChannelShuffle(groups))
        elif mid != c_in:
            raise ValueError("without an expansion conv the middle width must equal c_in")
        layers.append(ConvBNAct(mid, mid, kernel, stride=stride, groups=mid, act=act))
        if se_mid:
            layers.append(SqueezeExcite(mid, se_mid))
        layers.append(ConvBNAct(mid, c_out, 1, groups=groups, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out
