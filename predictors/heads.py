"""Prediction heads: one MLP per fuzzy cluster, mixed by membership (GENNAPE §3).

y_i = sum_k U_ik f_k(h_i). The memberships come from fuzzy c-means centroids on the frozen
embeddings (``learn_centers=False``: the centroids are buffers set by :meth:`set_centers`), or the
centroids are parameters learned with the heads (``learn_centers=True``). With one cluster this is
a plain MLP head.
"""
from __future__ import annotations

import torch
from torch import nn


class ClusterMixtureHead(nn.Module):
    """Args: in_dim; n_clusters (K, default 1); hidden (default 64); m (fuzzifier, 2.0);
    learn_centers (default False)."""

    def __init__(self, in_dim: int, n_clusters: int = 1, hidden: int = 64, m: float = 2.0, learn_centers: bool = False):
        super().__init__()
        self.in_dim, self.n_clusters, self.m, self.learn_centers = in_dim, n_clusters, m, learn_centers
        # K MLPs evaluated together as batched matrix products
        self.w1 = nn.Parameter(torch.empty(n_clusters, in_dim, hidden))
        self.b1 = nn.Parameter(torch.zeros(n_clusters, hidden))
        self.w2 = nn.Parameter(torch.empty(n_clusters, hidden, 1))
        self.b2 = nn.Parameter(torch.zeros(n_clusters, 1))
        centers = torch.zeros(n_clusters, in_dim)
        if learn_centers:
            self.centers = nn.Parameter(torch.randn(n_clusters, in_dim) * 0.1)
        else:
            self.register_buffer("centers", centers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in (self.w1, self.w2):
            nn.init.kaiming_uniform_(w.view(-1, w.size(-1)), a=5 ** 0.5)
        nn.init.zeros_(self.b1)
        nn.init.zeros_(self.b2)

    @torch.no_grad()
    def set_centers(self, centers: torch.Tensor) -> None:
        """Fix the fuzzy c-means centroids (and start every cluster's MLP from the same weights)."""
        self.centers.copy_(centers)
        for p in (self.w1, self.b1, self.w2, self.b2):
            p.copy_(p[:1].expand_as(p))

    def memberships(self, h: torch.Tensor) -> torch.Tensor:
        if self.n_clusters == 1:
            return h.new_ones(h.size(0), 1)
        d2 = torch.cdist(h, self.centers).pow(2).clamp_min(1e-12)
        inv = d2.pow(-1.0 / (self.m - 1.0))
        return inv / inv.sum(1, keepdim=True)

    def per_cluster(self, h: torch.Tensor) -> torch.Tensor:
        """Every cluster's MLP on every embedding: (batch, K)."""
        hidden = torch.relu(torch.einsum("bi,kih->bkh", h, self.w1) + self.b1)
        return torch.einsum("bkh,kho->bko", hidden, self.w2).squeeze(-1) + self.b2.squeeze(-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.predict_with_spread(h)[0]

    def predict_with_spread(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed prediction and the membership-weighted variance of the cluster heads around it
        (their disagreement: the raw material of the calibrated uncertainty)."""
        u, per_cluster = self.memberships(h), self.per_cluster(h)
        mixed = (u * per_cluster).sum(1)
        return mixed, (u * (per_cluster - mixed[:, None]) ** 2).sum(1)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, n_clusters={self.n_clusters}, m={self.m}, learn_centers={self.learn_centers}"
