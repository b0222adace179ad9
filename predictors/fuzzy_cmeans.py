"""Fuzzy c-means (Bezdek 1981) as a scikit-learn estimator.

Memberships U_ik = 1 / sum_j (d_ik / d_ij)^(2 / (m - 1)); centroids v_k = sum_i U_ik^m x_i /
sum_i U_ik^m; iterate until max |dU| <= tol or ``max_iter``. Initial centroids by seeded
k-means++. ``predict`` returns memberships (rows sum to 1) for new points from the fixed centroids.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.utils.validation import check_array, check_is_fitted


def memberships(x: np.ndarray, centers: np.ndarray, m: float) -> np.ndarray:
    """Membership of each row of ``x`` in each cluster (vectorised; exact hits get membership 1)."""
    d2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    d2 = np.maximum(d2, 1e-12)
    inv = d2 ** (-1.0 / (m - 1.0))
    return inv / inv.sum(1, keepdims=True)


class FuzzyCMeans(ClusterMixin, BaseEstimator):
    """Args: n_clusters (C, default 4); m (fuzzifier > 1, default 2.0); max_iter (300); tol (1e-9);
    random_state (seed of the k-means++ initialisation)."""

    def __init__(self, n_clusters: int = 4, m: float = 2.0, max_iter: int = 300, tol: float = 1e-9, random_state=0):
        self.n_clusters = n_clusters
        self.m = m
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None) -> "FuzzyCMeans":
        x = check_array(X, dtype=np.float64)
        if self.m <= 1:
            raise ValueError(f"m must be > 1, got {self.m}")
        if not 1 <= self.n_clusters <= len(x):
            raise ValueError(f"n_clusters must be in [1, {len(x)}], got {self.n_clusters}")
        centers, _ = kmeans_plusplus(x, self.n_clusters, random_state=self.random_state)
        u = memberships(x, centers, self.m)
        for self.n_iter_ in range(1, self.max_iter + 1):
            weights = u ** self.m
            centers = weights.T @ x / weights.sum(0)[:, None]
            new_u = memberships(x, centers, self.m)
            change = np.abs(new_u - u).max()
            u = new_u
            if change <= self.tol:
                break
        self.cluster_centers_, self.memberships_ = centers, u
        self.labels_ = u.argmax(1)
        self.n_features_in_ = x.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "cluster_centers_")
        return memberships(check_array(X, dtype=np.float64), self.cluster_centers_, self.m)
