"""Label transforms, invertible, with statistics fitted on the training family only.

``flops`` (GENNAPE's T): y = z-score( A / (log10(GFLOPs + 1) + 1) ). It injects a FLOPs prior:
bigger networks need a higher accuracy to get the same transformed label, which is what lifted
GENNAPE's zero-shot transfer. ``zscore``: y = z-score(A). ``none``: identity.
"""
from __future__ import annotations

import torch
from torch import nn

KINDS = ("flops", "zscore", "none")


class LabelTransform(nn.Module):
    """``forward(y, macs)`` maps labels to the model's scale; ``inverse`` maps predictions back.

    The statistics are buffers, so they travel inside every checkpoint.
    """

    def __init__(self, kind: str = "flops"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"label transform must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.register_buffer("mean", torch.tensor(0.0))
        self.register_buffer("std", torch.tensor(1.0))

    def _divisor(self, macs: torch.Tensor) -> torch.Tensor:
        if self.kind != "flops":
            return torch.ones_like(macs)
        return torch.log10(macs / 1e9 + 1.0) + 1.0

    def fit(self, y: torch.Tensor, macs: torch.Tensor) -> "LabelTransform":
        if self.kind != "none":
            raw = y / self._divisor(macs)
            self.mean.fill_(float(raw.mean()))
            self.std.fill_(float(raw.std().clamp_min(1e-8)))
        return self

    def forward(self, y: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        return (y / self._divisor(macs) - self.mean) / self.std

    def inverse(self, z: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        return (z * self.std + self.mean) * self._divisor(macs)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, mean={float(self.mean):.4g}, std={float(self.std):.4g}"
