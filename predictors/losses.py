"""Training losses: GENNAPE's contrastive loss with spectral soft positives, and ranking losses."""
from __future__ import annotations

import torch
from torch.nn import functional as F

def spectral_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, spectra: torch.Tensor,
                              temperature: float = 0.1, spectral_temperature: float = 0.1) -> torch.Tensor:
    """SimCLR between two dropout views, with soft targets from spectral similarity.

    Row i's target over the other view's batch is softmax(-d_ij / (t_s * mean d)), d the Euclidean
    distance between Laplacian spectra: itself first (d_ii = 0), then structurally similar graphs.
    (GENNAPE writes softmax of the distance; the intent is that similar graphs weigh more.)
    """
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = z1 @ z2.t() / temperature
    distance = torch.cdist(spectra, spectra)
    scale = distance.sum() / max(distance.numel() - len(distance), 1)
    target = torch.softmax(-distance / (spectral_temperature * scale.clamp_min(1e-8)), dim=1)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-target * F.log_softmax(logits.t(), 1), 1).mean())


def pairwise_ranking_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Logistic loss on every ordered pair of the batch whose labels differ."""
    diff_pred = pred[:, None] - pred[None, :]
    sign = torch.sign(true[:, None] - true[None, :])
    mask = sign != 0
    if not mask.any():
        return pred.sum() * 0
    return F.softplus(-sign[mask] * diff_pred[mask]).mean()


def listwise_ranking_loss(pred: torch.Tensor, true: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """ListNet: cross-entropy between softmax of true and predicted scores."""
    return torch.sum(-torch.softmax(true / temperature, 0) * F.log_softmax(pred, 0))
