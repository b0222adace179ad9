"""Ranking and regression metrics for performance predictors."""
from __future__ import annotations

import numpy as np
from scipy import stats


def srcc(pred, true) -> float:
    return float(stats.spearmanr(pred, true).statistic)


def kendall_tau(pred, true) -> float:
    return float(stats.kendalltau(pred, true).statistic)


def mae(pred, true) -> float:
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(true))))


def ndcg_at_k(pred, true, k: int = 10) -> float:
    """NDCG@k with the true values (shifted to be >= 0) as gains, ranked by ``pred``."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    gains = true - true.min()
    order, ideal = np.argsort(-pred)[:k], np.sort(gains)[::-1][:k]
    discounts = 1.0 / np.log2(np.arange(2, len(order) + 2))
    best = float((ideal * discounts).sum())
    return float((gains[order] * discounts).sum() / best) if best > 0 else 0.0


def precision_at_top(pred, true, fraction: float = 0.05) -> float:
    """Share of the predicted top ``fraction`` that is in the true top ``fraction``."""
    n = max(1, int(round(len(true) * fraction)))
    top_pred, top_true = set(np.argsort(-np.asarray(pred))[:n]), set(np.argsort(-np.asarray(true))[:n])
    return len(top_pred & top_true) / n


def all_metrics(pred, true) -> dict[str, float]:
    return {
        "srcc": srcc(pred, true), "kendall": kendall_tau(pred, true), "ndcg@10": ndcg_at_k(pred, true, 10),
        "mae": mae(pred, true), "top5%": precision_at_top(pred, true, 0.05),
    }
