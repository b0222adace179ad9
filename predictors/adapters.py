"""Parameter-efficient transfer: LoRA (Hu et al. 2022) on the GNN layers' linear maps.

Every linear map inside the message-passing layers gets a low-rank update W + B A (B starts at
zero, so the adapted model starts exactly where the pretrained one was); the pretrained weights
stay frozen and only A and B (and the heads) train.
"""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn.dense.linear import Linear as PygLinear


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Module, rank: int = 4, alpha: float = 1.0):
        super().__init__()
        in_features, out_features = base.weight.shape[1], base.weight.shape[0]
        self.base, self.scale = base, alpha / rank
        self.lora_a = nn.Parameter(torch.randn(rank, in_features) / in_features ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def add_lora(encoder: nn.Module, rank: int = 4) -> int:
    """Wrap the linear maps of ``encoder``'s convolutions; returns how many were wrapped."""
    wrapped = 0
    for convs in (encoder.forward_convs, encoder.backward_convs):
        for conv in convs:
            for parent in list(conv.modules()):
                for name, child in list(parent.named_children()):
                    if isinstance(child, (nn.Linear, PygLinear)) and not isinstance(parent, LoRALinear):
                        setattr(parent, name, LoRALinear(child, rank))
                        wrapped += 1
    return wrapped
