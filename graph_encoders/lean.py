"""Inference without torch-geometric: batching and the k-GNN encoder in plain torch.

Importing torch-geometric takes ~1.7 s here, more than the whole budget of a cold ``predict``
call beyond ``import torch``. For inference only, :func:`collate` batches CGs the way
``torch_geometric.data.Batch`` does and :class:`LeanEncoder` computes exactly what
:class:`graph_encoders.gnn.CGEncoder` computes for ``conv="graphconv"``, with the same parameter
names, so a trained state dict loads into either (a test checks they agree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .features import NUM_FEATURES, node_features
from .vocabulary import CATEGORIES, CATEGORY_INDEX


@dataclass
class GraphBatch:
    """The fields of a ``torch_geometric.data.Batch`` the predictor reads."""

    x: torch.Tensor
    op: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    macs: torch.Tensor
    params: torch.Tensor
    num_graphs: int

    def to(self, device) -> "GraphBatch":
        return self


def collate(cgs) -> GraphBatch:
    """Batch computation graphs: node tensors stacked, edge indices offset, ``batch`` vector."""
    xs, ops, edges, owner, offset = [], [], [], [], 0
    for i, cg in enumerate(cgs):
        xs.extend(node_features(n) for n in cg.nodes)
        ops.extend(CATEGORY_INDEX[n.category] for n in cg.nodes)
        if cg.edges:
            edges.append(np.asarray(cg.edges, dtype=np.int64) + offset)
        owner.extend([i] * cg.num_nodes)
        offset += cg.num_nodes
    edge_index = torch.from_numpy(np.concatenate(edges).T.copy()) if edges else torch.zeros(2, 0, dtype=torch.long)
    return GraphBatch(
        x=torch.tensor(xs, dtype=torch.float32).reshape(-1, NUM_FEATURES),
        op=torch.tensor(ops, dtype=torch.long),
        edge_index=edge_index,
        batch=torch.tensor(owner, dtype=torch.long),
        macs=torch.tensor([float(cg.macs) for cg in cgs]),
        params=torch.tensor([float(cg.params) for cg in cgs]),
        num_graphs=len(cgs),
    )


class _LeanGraphConv(nn.Module):
    """k-GNN layer: W_root x_i + W_rel sum_{j -> i} x_j (torch_geometric ``GraphConv``, aggr="add")."""

    def __init__(self, width: int):
        super().__init__()
        self.lin_rel = nn.Linear(width, width)
        self.lin_root = nn.Linear(width, width, bias=False)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        src, dst = edge_index
        summed = torch.zeros_like(h).index_add_(0, dst, h[src])
        return self.lin_rel(summed) + self.lin_root(h)


class LeanEncoder(nn.Module):
    """Plain-torch twin of ``CGEncoder(conv="graphconv", pooling="mean" | "sum")``."""

    def __init__(self, width: int = 96, layers: int = 4, pooling: str = "mean", **_ignored):
        super().__init__()
        if pooling not in ("mean", "sum"):
            raise ValueError(f"the lean encoder pools by mean or sum, not {pooling!r}")
        self.pooling = pooling
        self.op_embedding = nn.Embedding(len(CATEGORIES), width)
        self.feature_projection = nn.Linear(NUM_FEATURES, width)
        self.forward_convs = nn.ModuleList(_LeanGraphConv(width) for _ in range(layers))
        self.backward_convs = nn.ModuleList(_LeanGraphConv(width) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))

    def forward(self, data) -> torch.Tensor:
        h = self.op_embedding(data.op) + self.feature_projection(data.x)
        reverse = data.edge_index.flip(0)
        for fwd, bwd, norm in zip(self.forward_convs, self.backward_convs, self.norms):
            h = norm(h + torch.relu(fwd(h, data.edge_index) + bwd(h, reverse)))
        pooled = torch.zeros(data.num_graphs, h.size(1), dtype=h.dtype).index_add_(0, data.batch, h)
        if self.pooling == "mean":
            counts = torch.bincount(data.batch, minlength=data.num_graphs).clamp_min(1).unsqueeze(1)
            pooled = pooled / counts
        return pooled
