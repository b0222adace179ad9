"""Inference without torch-geometric: batching and the k-GNN encoder in plain torch.

Importing torch-geometric takes ~1.7 s here, more than the whole budget of a cold ``predict``
call beyond ``import torch``. For inference only, :func:`collate` batches CGs the way
``torch_geometric.data.Batch`` does and :class:`LeanEncoder` computes exactly what
:class:`graph_encoders.gnn.CGEncoder` computes for ``conv="graphconv"``, with the same parameter
names, so a trained state dict loads into either (a test checks they agree).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .features import NUM_FEATURES, folded_cost, node_tensors, visible_columns
from .vocabulary import CATEGORIES

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


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
    folded_cost: torch.Tensor  # (graphs, 3 x categories), see graph_encoders.features.folded_cost

    def to(self, device) -> "GraphBatch":
        return self


def graph_arrays(cg) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, np.ndarray]:
    """A CG's features, categories, edges, MACs, parameters and folded cost, computed once per CG object
    (search loops and surrogates score the same graphs again and again)."""
    cached = getattr(cg, "_arrays", None)
    if cached is None:
        x, op = (t.numpy() for t in node_tensors(cg.nodes))
        edges = np.asarray(cg.edges, dtype=np.int64).reshape(-1, 2)
        cached = cg._arrays = (x, op, edges, float(cg.macs), float(cg.params), folded_cost(cg).numpy())
    return cached


MAX_BATCH_NODES = 16_384  # larger batches spend their time faulting in fresh memory pages


def node_budget_batches(cgs, max_graphs: int = 512, max_nodes: int = MAX_BATCH_NODES):
    """Consecutive slices of ``cgs`` with at most ``max_graphs`` graphs and ``max_nodes`` nodes
    (a single larger graph gets a batch of its own): throughput peaks near 16k nodes a batch."""
    start, nodes = 0, 0
    for i, cg in enumerate(cgs):
        size = cg.num_nodes
        if i > start and (nodes + size > max_nodes or i - start >= max_graphs):
            yield cgs[start:i]
            start, nodes = i, 0
        nodes += size
    if start < len(cgs):
        yield cgs[start:]


def collate(cgs) -> GraphBatch:
    """Batch computation graphs: node tensors stacked, edge indices offset, ``batch`` vector."""
    arrays = [graph_arrays(cg) for cg in cgs]
    sizes = np.array([len(a[1]) for a in arrays], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    edges = np.concatenate([a[2] + o for a, o in zip(arrays, offsets)]) if arrays else np.zeros((0, 2), np.int64)
    return GraphBatch(
        x=torch.from_numpy(np.concatenate([a[0] for a in arrays])),
        op=torch.from_numpy(np.concatenate([a[1] for a in arrays])),
        edge_index=torch.from_numpy(edges.T.copy()),
        batch=torch.from_numpy(np.repeat(np.arange(len(arrays)), sizes)),
        macs=torch.tensor([a[3] for a in arrays]),
        params=torch.tensor([a[4] for a in arrays]),
        num_graphs=len(cgs),
        folded_cost=torch.from_numpy(np.concatenate([a[5] for a in arrays])),
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


class _LeanAttentionPool(nn.Module):
    """Softmax-gated sum of each graph's node states (torch_geometric ``AttentionalAggregation`` with
    a linear gate, the same parameter names)."""

    def __init__(self, width: int):
        super().__init__()
        self.gate_nn = nn.Linear(width, 1)

    def forward(self, h: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        gate = self.gate_nn(h).squeeze(1).to(h.dtype)
        top = torch.full((num_graphs,), -torch.inf, dtype=h.dtype).scatter_reduce(0, batch, gate.detach(), "amax")
        weight = (gate - top[batch]).exp()
        total = torch.zeros(num_graphs, dtype=h.dtype).index_add_(0, batch, weight)
        weight = weight / (total[batch] + 1e-16)
        return torch.zeros(num_graphs, h.size(1), dtype=h.dtype).index_add_(0, batch, h * weight.unsqueeze(1))


POOLINGS = ("mean", "sum", "attention")


class LeanEncoder(nn.Module):
    """Plain-torch twin of ``CGEncoder(conv="graphconv")`` with any of its poolings."""

    def __init__(self, width: int = 96, layers: int = 4, pooling: str = "mean", node_sizes: str = "all", **_ignored):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"the lean encoder pools by {', '.join(POOLINGS)}, not {pooling!r}")
        self.pooling = pooling
        self.pool = _LeanAttentionPool(width) if pooling == "attention" else None
        self.op_embedding = nn.Embedding(len(CATEGORIES), width)
        self.feature_projection = nn.Linear(NUM_FEATURES, width)
        self.register_buffer("feature_mask", visible_columns(node_sizes), persistent=False)
        self.forward_convs = nn.ModuleList(_LeanGraphConv(width) for _ in range(layers))
        self.backward_convs = nn.ModuleList(_LeanGraphConv(width) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))

    def forward(self, data) -> torch.Tensor:
        if torch.is_grad_enabled():  # training (fine-tuning): the layer modules, differentiable
            projected = nn.functional.linear(data.x, self._projection_weight(), self.feature_projection.bias)
            h = self.op_embedding(data.op) + projected
            reverse = data.edge_index.flip(0)
            for fwd, bwd, norm in zip(self.forward_convs, self.backward_convs, self.norms):
                h = norm(h + torch.relu(fwd(h, data.edge_index) + bwd(h, reverse)))
        else:  # inference: sparse sums over neighbours, no per-edge tensors
            h = self._fast_layers(self._embed_nodes(data), data.edge_index)
        if self.pool is not None:
            return self.pool(h, data.batch, data.num_graphs)
        pooled = torch.zeros(data.num_graphs, h.size(1), dtype=h.dtype).index_add_(0, data.batch, h)
        if self.pooling == "mean":
            counts = torch.bincount(data.batch, minlength=data.num_graphs).clamp_min(1).unsqueeze(1)
            pooled = pooled / counts
        return pooled

    def _fast_layers(self, h: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """The layers with every product written into two reused buffers. Inference is bound by
        first touches of fresh memory, not arithmetic: each new (nodes x width) tensor costs as
        much as a matrix product, so this allocates twice per batch instead of ~25 times."""
        n = h.size(0)
        incoming, outgoing = _sum_matrix(edge_index[1], edge_index[0], n), _sum_matrix(edge_index[0], edge_index[1], n)
        summed, update = torch.empty_like(h), torch.empty_like(h)
        for fwd, bwd, norm in zip(self.forward_convs, self.backward_convs, self.norms):
            torch.mm(incoming, h, out=summed)  # sparse; ``@`` would zero-fill and copy its result
            torch.addmm(fwd.lin_rel.bias + bwd.lin_rel.bias, summed, fwd.lin_rel.weight.t(), out=update)
            torch.mm(outgoing, h, out=summed)
            update.addmm_(summed, bwd.lin_rel.weight.t()).addmm_(h, (fwd.lin_root.weight + bwd.lin_root.weight).t())
            update.relu_().add_(h)
            h, update = _layer_norm_(update, norm), h
        return h

    def _embed_nodes(self, data) -> torch.Tensor:
        h = nn.functional.embedding(data.op, self.op_embedding.weight)
        return h.addmm_(data.x, self._projection_weight().t()).add_(self.feature_projection.bias)

    def _projection_weight(self) -> torch.Tensor:
        """The input projection's weight, zero on the feature columns ``node_sizes`` hides (the same as
        masking the features, without a second (nodes x features) tensor)."""
        return self.feature_projection.weight * self.feature_mask


def _layer_norm_(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """``norm(x)`` computed in place in ``x`` (``torch.var_mean`` is 10x slower than these two
    reductions here)."""
    x.sub_(x.mean(1, keepdim=True))
    inverse_std = (torch.linalg.vector_norm(x, dim=1, keepdim=True).square_().div_(x.size(1)).add_(norm.eps).rsqrt_())
    return x.mul_(inverse_std).mul_(norm.weight).add_(norm.bias)


def _sum_matrix(rows: torch.Tensor, cols: torch.Tensor, n: int) -> torch.Tensor:
    """CSR matrix whose product with h sums, for each row node, the states of its column nodes:
    3-4x faster than gathering every edge's state and scattering it back."""
    order = torch.argsort(rows, stable=True)
    crow = torch.zeros(n + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    return torch.sparse_csr_tensor(crow, cols[order], torch.ones(cols.numel()), (n, n), check_invariants=False)
