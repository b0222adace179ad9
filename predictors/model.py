"""The performance predictor: CG encoder -> embedding -> fuzzy-clustered heads, plus label transform."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graph_encoders.vocabulary import CATEGORY_INDEX

from .heads import ClusterMixtureHead
from .label_transform import LabelTransform

_OUTPUT = CATEGORY_INDEX["output"]


def graph_statistics(batch) -> torch.Tensor:
    """log-scaled FLOPs and parameters of each graph: the cheap priors every predictor should see."""
    return torch.stack([torch.log10(batch.macs + 1) / 10, torch.log10(batch.params + 1) / 8], dim=1)


def input_independent(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Which graphs compute a constant, and their chance-level accuracy (percent).

    The parser folds products with zero and everything computed only from them, so a network
    whose every output was folded (no edge reaches an output node) ignores its input: it is a
    constant function, and a classifier's accuracy is then chance, 100 / classes. No amount of
    training changes that, so the predictor states it instead of guessing (an NB-101-trained GNN
    put NB-201's 341 such networks at 88 %). Outputs that are not class scores get 0.
    """
    dst = batch.edge_index[1]
    is_output = batch.op == _OUTPUT
    reached = torch.zeros(batch.num_graphs, dtype=torch.bool)
    reached[batch.batch[dst[is_output[dst]]]] = True
    classes = (torch.pow(2.0, batch.x[:, 0] * 12) - 1).round()  # the output node's channels (features.py)
    per_graph = torch.zeros(batch.num_graphs).scatter_reduce_(0, batch.batch[is_output], classes[is_output], "amax",
                                                             include_self=False)
    chance = torch.where(per_graph >= 2, 100.0 / per_graph.clamp_min(1), torch.zeros_like(per_graph))
    return ~reached, chance


def constant_output_mask(graphs) -> np.ndarray:
    """:func:`input_independent` of a list of ``torch_geometric`` ``Data`` graphs, as a boolean array."""
    from torch_geometric.data import Batch

    return input_independent(Batch.from_data_list(list(graphs)))[0].numpy()


class PerformancePredictor(nn.Module):
    """Args: width, layers, conv, pooling, dropout (the :class:`CGEncoder`); n_clusters, head_hidden,
    fuzzifier, learn_centers (the :class:`ClusterMixtureHead`); label_transform (``flops``,
    ``zscore``, ``none``); projection_dim (contrastive projection head); node_sizes (which size columns
    of the node features the encoder reads: ``all``, ``spatial``, ``none``); lean (inference with the
    plain-torch encoder of :mod:`graph_encoders.lean`, same parameters, no torch-geometric import)."""

    def __init__(self, width: int = 96, layers: int = 4, conv: str = "graphconv", pooling: str = "mean",
                 dropout: float = 0.1, n_clusters: int = 4, head_hidden: int = 64, fuzzifier: float = 2.0,
                 learn_centers: bool = False, label_transform: str = "flops", projection_dim: int = 64,
                 node_sizes: str = "all", lean: bool = False):
        super().__init__()
        if lean and conv == "graphconv":
            from graph_encoders.lean import LeanEncoder

            self.encoder = LeanEncoder(width, layers, pooling, node_sizes)
        else:
            from graph_encoders.gnn import CGEncoder

            self.encoder = CGEncoder(width, layers, conv, pooling, dropout, node_sizes=node_sizes)
        self.embedding_dim = width + 2
        self.head = ClusterMixtureHead(self.embedding_dim, n_clusters, head_hidden, fuzzifier, learn_centers)
        self.head.set_centers(self.head.centers.detach().clone())  # identical cluster MLPs until clustering
        self.projection = nn.Sequential(nn.Linear(self.embedding_dim, width), nn.ReLU(), nn.Linear(width, projection_dim))
        self.transform = LabelTransform(label_transform)

    def embed(self, batch) -> torch.Tensor:
        return torch.cat([self.encoder(batch), graph_statistics(batch)], dim=1)

    def forward(self, batch) -> torch.Tensor:
        """Predictions on the transformed label scale (a ranking score)."""
        return self.score_with_spread(batch, self.embed(batch))[0]

    def score_with_spread(self, batch, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The heads' score and disagreement for embeddings ``h`` of ``batch``; a network whose output
        does not depend on its input scores its chance level, with no disagreement."""
        score, spread = self.head.predict_with_spread(h)
        constant, chance = input_independent(batch)
        if constant.any():
            score = torch.where(constant, self.transform(chance, batch.macs), score)
            spread = torch.where(constant, torch.zeros_like(spread), spread)
        return score, spread

    def predict_label(self, batch) -> torch.Tensor:
        """Predictions on the label's own scale (accuracy in percent, ...)."""
        return self.transform.inverse(self(batch), batch.macs)
