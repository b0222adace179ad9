"""The unified computation graph (CG): one node per atomic operation, edges along the forward pass.

A :class:`ComputationGraph` is what every other part of the package reads: the GNN sees it as a
``torch_geometric.data.Data`` (:meth:`ComputationGraph.to_pyg`), people see it as networkx or JSON.
Node features are defined in one place, :mod:`graph_encoders.features`.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .vocabulary import VOCABULARY_VERSION

CG_FORMAT_VERSION = 1

Shape = tuple[int, ...]


@dataclass
class CGNode:
    """One atomic operation.

    ``in_shapes`` are the shapes of the node's data inputs (its incoming edges, in input order),
    ``out_shapes`` of its outputs; unknown dimensions are 0. ``attrs`` holds the operator's
    structural attributes under canonical names: ``kernel``, ``stride``, ``dilation``, ``pads``
    (begin + end per spatial axis), ``groups``, ``bias`` and ``weight`` (the weight tensor's shape).
    ``macs`` and ``params`` are this node's multiply-accumulates (per sample) and parameters.
    """

    category: str
    op_type: str
    in_shapes: list[Shape] = field(default_factory=list)
    out_shapes: list[Shape] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    macs: int = 0
    params: int = 0
    name: str = ""

    def signature(self) -> str:
        """What defines the node structurally, for canonical order and equality.

        Not the name, nor the ONNX op type: Flatten and Reshape, or GlobalAveragePool and a spatial
        ReduceMean, are the same operation written by different exporters.
        """
        attrs = ",".join(f"{k}={self.attrs[k]}" for k in sorted(self.attrs))
        return f"{self.category}|{self.in_shapes}|{self.out_shapes}|{attrs}|{self.macs}|{self.params}"


@dataclass
class ComputationGraph:
    """Nodes in canonical topological order and directed edges ``(src, dst)`` between their indices."""

    nodes: list[CGNode]
    edges: list[tuple[int, int]]
    source: str = ""
    input_shapes: list[Shape] = field(default_factory=list)
    unknown_ops: list[str] = field(default_factory=list)
    # Nodes that run but cannot affect the output (a product with zero and what only it feeds, or
    # what reaches no output): not in ``nodes`` nor in ``macs`` / ``params``; latency counts them.
    folded: list[CGNode] = field(default_factory=list)

    # ---------------------------------------------------------------- graph-level statistics
    @property
    def macs(self) -> int:
        """Total multiply-accumulates per sample (the package's "FLOPs": 1 MAC = 1 FLOP)."""
        return sum(n.macs for n in self.nodes)

    flops = macs

    @property
    def params(self) -> int:
        """Parameters under the inference convention (BatchNorm folded into the preceding conv)."""
        return sum(n.params for n in self.nodes)

    @property
    def folded_nodes(self) -> int:
        return len(self.folded)

    @property
    def executed_macs(self) -> int:
        """MACs of everything that runs, folded nodes included (what latency depends on)."""
        return self.macs + sum(n.macs for n in self.folded)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def constant_output(self) -> bool:
        """True when no output depends on an input: every path to the outputs was folded (the
        network computes a constant, e.g. an NB-201 cell whose output node reads only ``none``)."""
        outputs = {i for i, n in enumerate(self.nodes) if n.category == "output"}
        return not any(dst in outputs for _, dst in self.edges)

    @property
    def depth(self) -> int:
        """Nodes on the longest input-to-output path."""
        longest = [1] * len(self.nodes)
        for src, dst in sorted(self.edges, key=lambda e: e[1]):
            longest[dst] = max(longest[dst], longest[src] + 1)
        return max(longest, default=0)

    def op_histogram(self) -> Counter:
        return Counter(n.category for n in self.nodes)

    def summary(self) -> str:
        """One line: nodes, edges, top-5 categories, FLOPs, params, input shape."""
        top = ", ".join(f"{c}:{k}" for c, k in self.op_histogram().most_common(5))
        shapes = " ".join("x".join(str(d) for d in s) for s in self.input_shapes)
        line = (
            f"{self.source or '<model>'}: {self.num_nodes} nodes, {len(self.edges)} edges, depth {self.depth}, "
            f"ops [{top}], FLOPs {format_si(self.macs)} (MACs), params {format_si(self.params)}, input {shapes or '?'}"
        )
        if self.unknown_ops:
            line += f", unknown ops as 'other': {','.join(sorted(set(self.unknown_ops)))}"
        if self.folded_nodes:
            line += f", {self.folded_nodes} nodes folded (products with zero, or unused)"
        if self.constant_output:
            line += ", output does not depend on the input"
        return line

    # ---------------------------------------------------------------- conversions
    def to_networkx(self):
        import networkx as nx

        graph = nx.DiGraph(source=self.source, macs=self.macs, params=self.params)
        for i, node in enumerate(self.nodes):
            graph.add_node(i, **_flat_node(node))
        graph.add_edges_from(self.edges)
        return graph

    def write_graphml(self, path: str | Path) -> None:
        import networkx as nx

        nx.write_graphml(self.to_networkx(), str(path))

    def to_pyg(self):
        """A ``torch_geometric.data.Data``: ``x`` numeric features, ``op`` category indices."""
        from .features import to_pyg

        return to_pyg(self)

    def to_dict(self) -> dict:
        return {
            "format": CG_FORMAT_VERSION,
            "vocabulary": VOCABULARY_VERSION,
            "source": self.source,
            "input_shapes": [list(s) for s in self.input_shapes],
            "unknown_ops": list(self.unknown_ops),
            "folded": [asdict(n) for n in self.folded],
            "macs": self.macs,
            "params": self.params,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ComputationGraph":
        if data.get("format") != CG_FORMAT_VERSION:
            raise ValueError(f"CG format {data.get('format')} is not {CG_FORMAT_VERSION}")
        return cls(
            nodes=[_node_from_dict(n) for n in data["nodes"]],
            edges=[tuple(e) for e in data["edges"]],
            source=data.get("source", ""),
            input_shapes=[tuple(s) for s in data.get("input_shapes", [])],
            unknown_ops=list(data.get("unknown_ops", [])),
            folded=[_node_from_dict(n) for n in data.get("folded", [])],
        )

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load_json(cls, path: str | Path) -> "ComputationGraph":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def structure(self) -> tuple:
        """What makes two CGs the same architecture: node signatures in order, and the edges."""
        return tuple(n.signature() for n in self.nodes), tuple(sorted(self.edges))


def _node_from_dict(n: dict) -> CGNode:
    return CGNode(
        category=n["category"],
        op_type=n["op_type"],
        in_shapes=[tuple(s) for s in n["in_shapes"]],
        out_shapes=[tuple(s) for s in n["out_shapes"]],
        attrs={k: tuple(v) if isinstance(v, list) else v for k, v in n["attrs"].items()},
        macs=n["macs"],
        params=n["params"],
        name=n.get("name", ""),
    )


def _flat_node(node: CGNode) -> dict:
    """GraphML takes scalars only: shapes and attributes become strings."""
    flat = {"category": node.category, "op_type": node.op_type, "macs": node.macs, "params": node.params}
    flat["in_shapes"] = str([list(s) for s in node.in_shapes])
    flat["out_shapes"] = str([list(s) for s in node.out_shapes])
    for key, value in node.attrs.items():
        flat[f"attr_{key}"] = str(value) if isinstance(value, (tuple, list)) else value
    return flat


def format_si(value: float) -> str:
    """1234567 -> "1.235M" (also used by the predict table)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3f}{unit}"
    return str(value)
