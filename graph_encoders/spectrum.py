"""Laplacian spectra of computation graphs: GENNAPE's structural distance between graphs."""
from __future__ import annotations

import numpy as np

SPECTRUM_SIZE = 21  # q smallest eigenvalues of the normalised Laplacian (GENNAPE)


def laplacian_spectrum(num_nodes: int, edges, q: int = SPECTRUM_SIZE) -> np.ndarray:
    """The ``q`` smallest eigenvalues of the normalised Laplacian of the undirected graph, padded
    with 2.0 (the largest possible eigenvalue) for graphs with fewer than ``q`` nodes."""
    adjacency = np.zeros((num_nodes, num_nodes))
    for s, d in edges:
        adjacency[s, d] = adjacency[d, s] = 1.0
    degree = adjacency.sum(1)
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)  # isolated: 0
    laplacian = np.eye(num_nodes) - scale[:, None] * adjacency * scale[None, :]
    values = np.linalg.eigvalsh(laplacian)[:q]
    return np.pad(values, (0, q - len(values)), constant_values=2.0).astype(np.float32)
