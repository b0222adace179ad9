"""GNN encoders over computation graphs (torch-geometric).

:class:`CGEncoder` embeds each node from its operator category and numeric features
(:mod:`graph_encoders.features`), runs ``layers`` message-passing layers in both edge directions
(what a node computes depends on its inputs; what it is for, on its consumers), and pools the
nodes into one graph embedding.

Layer types, chosen by name: ``graphconv`` (k-GNN, Morris et al. 2019; GENNAPE's choice),
``gin`` (Xu et al. 2019), ``gine`` (GIN with edge features; here the edge direction) and ``gat``
(GATv2, Brody et al. 2022). Pooling: ``mean``, ``sum`` or ``attention``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, GINConv, GINEConv, GraphConv, global_add_pool, global_mean_pool
from torch_geometric.nn.aggr import AttentionalAggregation

from .features import NUM_FEATURES, visible_columns
from .lean import POOLINGS  # the plain-torch twin pools the same ways; one list for both
from .vocabulary import CATEGORIES

CONVS = ("graphconv", "gin", "gine", "gat")


def _mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))


def _make_conv(kind: str, width: int) -> nn.Module:
    if kind == "graphconv":
        return GraphConv(width, width, aggr="add")
    if kind == "gin":
        return GINConv(_mlp(width), train_eps=True)
    if kind == "gine":
        return GINEConv(_mlp(width), train_eps=True, edge_dim=width)
    if kind == "gat":
        return GATv2Conv(width, width // 4, heads=4)
    raise ValueError(f"conv must be one of {CONVS}, got {kind!r}")


class CGEncoder(nn.Module):
    """Computation graph -> embedding of size ``width`` (plus per-layer node states on request).

    Args:
        width (int): hidden and embedding size (default 96).
        layers (int): message-passing layers (default 4).
        conv (str): one of ``graphconv``, ``gin``, ``gine``, ``gat`` (default ``graphconv``).
        pooling (str): one of ``mean``, ``sum``, ``attention`` (default ``mean``).
        dropout (float): dropout after each layer; also the contrastive views' only augmentation.
        op_dropout (float): in training, the share of nodes whose category embedding is hidden
            (default 0.15). Category embeddings start at zero, and a category never seen in
            training stays at zero, so hiding teaches the encoder to judge such an operator by its
            shapes, kernel and costs alone: what zero-shot transfer to new operators needs.
        node_sizes (str): which size columns of the node features it reads: ``all`` (default),
            ``spatial`` (heights and widths, not channels or costs) or ``none``
            (:data:`graph_encoders.features.HIDDEN_SIZE_COLUMNS`).
    """

    def __init__(self, width: int = 96, layers: int = 4, conv: str = "graphconv", pooling: str = "mean",
                 dropout: float = 0.1, op_dropout: float = 0.15, node_sizes: str = "all"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.width, self.num_layers, self.conv_kind, self.pooling_kind = width, layers, conv, pooling
        self.op_dropout, self.node_sizes = op_dropout, node_sizes
        self.register_buffer("feature_mask", visible_columns(node_sizes), persistent=False)
        self.op_embedding = nn.Embedding(len(CATEGORIES), width)
        nn.init.zeros_(self.op_embedding.weight)
        self.feature_projection = nn.Linear(NUM_FEATURES, width)
        self.forward_convs = nn.ModuleList(_make_conv(conv, width) for _ in range(layers))
        self.backward_convs = nn.ModuleList(_make_conv(conv, width) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.direction = nn.Embedding(2, width) if conv == "gine" else None
        self.dropout = nn.Dropout(dropout)
        self.pool = AttentionalAggregation(nn.Linear(width, 1)) if pooling == "attention" else None

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        nn.init.zeros_(self.op_embedding.weight)

    def _conv(self, conv: nn.Module, h: torch.Tensor, edge_index: torch.Tensor, direction: int) -> torch.Tensor:
        if self.direction is not None:
            edge_attr = self.direction.weight[direction].expand(edge_index.size(1), -1)
            return conv(h, edge_index, edge_attr)
        return conv(h, edge_index)

    def node_states(self, data) -> list[torch.Tensor]:
        """Node states after the input embedding and after each layer (for adapters)."""
        category = self.op_embedding(data.op)
        if self.training and self.op_dropout > 0:
            category = category * (torch.rand(category.size(0), 1, device=category.device) >= self.op_dropout)
        h = category + self.feature_projection(data.x * self.feature_mask)
        states = [h]
        reverse = data.edge_index.flip(0)
        for fwd, bwd, norm in zip(self.forward_convs, self.backward_convs, self.norms):
            update = self._conv(fwd, h, data.edge_index, 0) + self._conv(bwd, h, reverse, 1)
            h = norm(h + self.dropout(torch.relu(update)))
            states.append(h)
        return states

    def readout(self, h: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            return self.pool(h, batch)
        return global_add_pool(h, batch) if self.pooling_kind == "sum" else global_mean_pool(h, batch)

    def forward(self, data) -> torch.Tensor:
        return self.readout(self.node_states(data)[-1], data.batch)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(width={self.width}, layers={self.num_layers}, conv={self.conv_kind}, "
                f"pooling={self.pooling_kind}, node_sizes={self.node_sizes})")
