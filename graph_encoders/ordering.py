"""Canonical topological order: the same architecture gets the same node order and edge list.

Exporters list nodes in different orders. We order by Kahn's algorithm, choosing among ready nodes
by (node signature, hash of everything downstream, positions of its predecessors). The downstream
hash separates branches that start alike but differ later, so that only truly interchangeable
nodes tie, and then either choice yields the same graph.
"""
from __future__ import annotations

import hashlib
import heapq

from .cg import CGNode


def canonical_order(nodes: list[CGNode], edges: list[tuple[int, int]]) -> list[int]:
    """A permutation of node indices: ``order[k]`` is the old index of the k-th node."""
    n = len(nodes)
    succ: list[set[int]] = [set() for _ in range(n)]
    pred: list[set[int]] = [set() for _ in range(n)]
    for s, d in edges:
        succ[s].add(d)
        pred[d].add(s)
    signature = [node.signature() for node in nodes]
    downstream = _downstream_hashes(signature, succ, pred)

    placed: dict[int, int] = {}
    waiting = [len(p) for p in pred]
    ready: list[tuple] = []

    def push(i: int) -> None:
        heapq.heappush(ready, (signature[i], downstream[i], tuple(sorted(placed[p] for p in pred[i])), i))

    for i in range(n):
        if waiting[i] == 0:
            push(i)
    order: list[int] = []
    while ready:
        *_, i = heapq.heappop(ready)
        placed[i] = len(order)
        order.append(i)
        for d in succ[i]:
            waiting[d] -= 1
            if waiting[d] == 0:
                push(d)
    if len(order) != n:
        raise ValueError("the graph has a cycle")
    return order


def _downstream_hashes(signature: list[str], succ: list[set[int]], pred: list[set[int]]) -> list[str]:
    """hash(node) = H(signature, sorted hashes of successors), from the outputs backwards."""
    n = len(signature)
    remaining = [len(s) for s in succ]
    stack = [i for i in range(n) if remaining[i] == 0]
    result = [""] * n
    while stack:
        i = stack.pop()
        digest = hashlib.blake2b(signature[i].encode(), digest_size=12)
        for child in sorted(result[c] for c in succ[i]):
            digest.update(child.encode())
        result[i] = digest.hexdigest()
        for p in pred[i]:
            remaining[p] -= 1
            if remaining[p] == 0:
                stack.append(p)
    return result
