"""The performance predictor: CG encoder -> embedding -> fuzzy-clustered heads, plus label transform."""
from __future__ import annotations

import torch
from torch import nn

from .heads import ClusterMixtureHead
from .label_transform import LabelTransform


def graph_statistics(batch) -> torch.Tensor:
    """log-scaled FLOPs and parameters of each graph: the cheap priors every predictor should see."""
    return torch.stack([torch.log10(batch.macs + 1) / 10, torch.log10(batch.params + 1) / 8], dim=1)


class PerformancePredictor(nn.Module):
    """Args: width, layers, conv, pooling, dropout (the :class:`CGEncoder`); n_clusters, head_hidden,
    fuzzifier, learn_centers (the :class:`ClusterMixtureHead`); label_transform (``flops``,
    ``zscore``, ``none``); projection_dim (contrastive projection head); lean (inference with the
    plain-torch encoder of :mod:`graph_encoders.lean`, same parameters, no torch-geometric import)."""

    def __init__(self, width: int = 96, layers: int = 4, conv: str = "graphconv", pooling: str = "mean",
                 dropout: float = 0.1, n_clusters: int = 4, head_hidden: int = 64, fuzzifier: float = 2.0,
                 learn_centers: bool = False, label_transform: str = "flops", projection_dim: int = 64,
                 lean: bool = False):
        super().__init__()
        if lean and conv == "graphconv" and pooling in ("mean", "sum"):
            from graph_encoders.lean import LeanEncoder

            self.encoder = LeanEncoder(width, layers, pooling)
        else:
            from graph_encoders.gnn import CGEncoder

            self.encoder = CGEncoder(width, layers, conv, pooling, dropout)
        self.embedding_dim = width + 2
        self.head = ClusterMixtureHead(self.embedding_dim, n_clusters, head_hidden, fuzzifier, learn_centers)
        self.head.set_centers(self.head.centers.detach().clone())  # identical cluster MLPs until clustering
        self.projection = nn.Sequential(nn.Linear(self.embedding_dim, width), nn.ReLU(), nn.Linear(width, projection_dim))
        self.transform = LabelTransform(label_transform)

    def embed(self, batch) -> torch.Tensor:
        return torch.cat([self.encoder(batch), graph_statistics(batch)], dim=1)

    def forward(self, batch) -> torch.Tensor:
        """Predictions on the transformed label scale (a ranking score)."""
        return self.head(self.embed(batch))

    def predict_label(self, batch) -> torch.Tensor:
        """Predictions on the label's own scale (accuracy in percent, ...)."""
        return self.transform.inverse(self(batch), batch.macs)
