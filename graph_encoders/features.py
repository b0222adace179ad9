"""Node features: the one place that defines what the GNN sees of a CG node.

Each node gets a category index (``Data.op``, embedded by the encoder) and a vector of
:data:`NUM_FEATURES` floats (``Data.x``):

=========  ==================================================================================
columns    meaning (all counts pass through ``log2(1 + v) / scale`` so they sit near [0, 1])
=========  ==================================================================================
0-2        first data input: channels, height, width
3-5        second data input (0 when absent): channels, height, width
6-8        first output: channels, height, width
9-10       kernel size (two spatial axes; 1-D ops repeat the one; 0 for ops without a window)
11-12      stride
13-14      dilation
15-16      padding, begin + end per axis
17         log2 of groups
18         depthwise flag (groups == input channels > 1)
19         bias flag
20-21      weight shape: output and input features/channels (per group)
22         per-node MACs, log10(1 + MACs) / 10
23         per-node parameters, log10(1 + params) / 8
24         output elements, log2(1 + n) / 24
=========  ==================================================================================

Tensor layout convention for channels / height / width: rank 4 is NCHW; rank 3 is
(batch, sequence, hidden) as in transformers, so channels = hidden and height = sequence length;
rank 2 is (batch, features); rank 5 (NCDHW) folds depth into height; rank 1 is (features,).

An encoder can be told to ignore some of a node's sizes (``node_sizes``, :data:`HIDDEN_SIZE_COLUMNS`):
``all`` reads every column; ``spatial`` hides what scales with a family's widths (channels, weight
shapes, per-node MACs, parameters and output elements) and keeps heights and widths, which mark the
same stage of a network in every family on the same images; ``none`` hides every size (columns 9-19
remain). The graph-level FLOPs and parameters the heads read are never hidden.

Graph-level: ``macs``, ``params`` and ``folded_cost``, the :func:`cost_totals` of the nodes folded
out of the graph (they run, so latency counts them; the GNN does not see them).
"""
from __future__ import annotations

import math

import torch

from .cg import ComputationGraph, Shape
from .vocabulary import CATEGORY_INDEX

FEATURE_VERSION = 1
NUM_FEATURES = 25


HIDDEN_SIZE_COLUMNS = {
    "all": (),
    "spatial": (0, 3, 6, 20, 21, 22, 23, 24),
    "none": (*range(0, 9), *range(20, 25)),
}


def visible_columns(node_sizes: str = "all") -> torch.Tensor:
    """(NUM_FEATURES,) mask: 1.0 for the feature columns an encoder with this ``node_sizes`` reads."""
    if node_sizes not in HIDDEN_SIZE_COLUMNS:
        raise ValueError(f"node_sizes must be one of {tuple(HIDDEN_SIZE_COLUMNS)}, got {node_sizes!r}")
    mask = torch.ones(NUM_FEATURES)
    mask[list(HIDDEN_SIZE_COLUMNS[node_sizes])] = 0.0
    return mask


def chw(shape: Shape) -> tuple[int, int, int]:
    """(channels, height, width) of a tensor shape under the layout convention above."""
    shape = tuple(max(int(d), 0) for d in shape)
    rank = len(shape)
    if rank >= 5:
        return shape[1], shape[2] * shape[3], math.prod(shape[4:])
    if rank == 4:
        return shape[1], shape[2], shape[3]
    if rank == 3:
        return shape[2], shape[1], 1
    if rank == 2:
        return shape[1], 1, 1
    if rank == 1:
        return shape[0], 1, 1
    return 0, 0, 0


def _log(value: float, scale: float) -> float:
    return math.log2(1.0 + max(value, 0.0)) / scale


def _pair(values, default: int = 0) -> tuple[int, int]:
    values = tuple(values or ())
    if not values:
        return default, default
    return (values[0], values[0]) if len(values) == 1 else (values[-2], values[-1])


def node_features(node) -> list[float]:
    in0 = chw(node.in_shapes[0]) if node.in_shapes else (0, 0, 0)
    in1 = chw(node.in_shapes[1]) if len(node.in_shapes) > 1 else (0, 0, 0)
    out = chw(node.out_shapes[0]) if node.out_shapes else (0, 0, 0)
    attrs = node.attrs
    groups = int(attrs.get("groups", 1))
    weight = tuple(attrs.get("weight", ()))
    out_numel = math.prod(max(d, 1) for d in node.out_shapes[0][1:]) if node.out_shapes and node.out_shapes[0] else 0
    row = [_log(v, 12) for v in (*in0, *in1, *out)]
    row += [_log(v, 3) for v in _pair(attrs.get("kernel"))]
    row += [_log(v, 3) for v in _pair(attrs.get("stride"))]
    row += [_log(v, 3) for v in _pair(attrs.get("dilation"))]
    row += [_log(v, 3) for v in _pair(attrs.get("pads"))]
    row += [math.log2(max(groups, 1)) / 10, float(groups > 1 and groups == in0[0]), float(attrs.get("bias", 0))]
    row += [_log(weight[0] if weight else 0, 12), _log(weight[1] if len(weight) > 1 else 0, 12)]
    row += [math.log10(1 + node.macs) / 10, math.log10(1 + node.params) / 8, _log(out_numel, 24)]
    return row


def node_tensors(nodes) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (nodes, NUM_FEATURES) and category indices ``op`` of a list of CG nodes."""
    x = torch.tensor([node_features(n) for n in nodes], dtype=torch.float32).reshape(-1, NUM_FEATURES)
    return x, torch.tensor([CATEGORY_INDEX[n.category] for n in nodes], dtype=torch.long)


def cost_totals(x: torch.Tensor, op: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """(graphs, 3 x categories) node count, MACs and output elements per operator category, read
    back from the feature columns 22 and 24 (``graph`` gives each node's graph index)."""
    n_categories = len(CATEGORY_INDEX)
    macs = torch.pow(10.0, x[:, 22].double() * 10) - 1
    elements = torch.pow(2.0, x[:, 24].double() * 24) - 1
    key = graph * n_categories + op
    totals = torch.zeros(3, n_graphs * n_categories, dtype=torch.float64)
    for row, values in enumerate((torch.ones_like(macs), macs, elements)):
        totals[row].index_add_(0, key, values)
    return totals.view(3, n_graphs, n_categories).permute(1, 0, 2).reshape(n_graphs, -1)


def folded_cost(cg: ComputationGraph) -> torch.Tensor:
    """(1, 3 x categories) :func:`cost_totals` of the CG's folded nodes (zeros when none)."""
    if not cg.folded:
        return torch.zeros(1, 3 * len(CATEGORY_INDEX))
    x, op = node_tensors(cg.folded)
    return cost_totals(x, op, torch.zeros(len(op), dtype=torch.long), 1).float()


def to_pyg(cg: ComputationGraph):
    """``Data(x, op, edge_index)`` plus graph-level ``macs``, ``params``, ``folded_cost`` and ``num_nodes``."""
    from torch_geometric.data import Data

    x, op = node_tensors(cg.nodes)
    edge_index = torch.tensor(cg.edges, dtype=torch.long).reshape(-1, 2).t().contiguous()
    return Data(
        x=x, op=op, edge_index=edge_index, num_nodes=len(cg.nodes),
        macs=torch.tensor([float(cg.macs)]), params=torch.tensor([float(cg.params)]), folded_cost=folded_cost(cg),
    )
