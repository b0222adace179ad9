"""Few-shot prediction on a new target from a handful of labels, without refitting a network.

Candidates, each a function ``fit(p, e, y) -> predict(p, e)`` of zero-shot prediction columns ``p``
(one per source model or task) and embeddings ``e`` (the frozen encoder's graph embedding, log
FLOPs and params included):

- ``zero-shot``: the mean zero-shot column, as it is;
- ``correlation-weighted``: each column weighted by its correlation with the labels;
- ``ridge``: a ridge regression on the columns and the embedding;
- ``size``: a ridge on the columns and log FLOPs / params only (the embedding's last two columns):
  three or so coefficients, so it holds on 20 labels where the embedding ridge overfits;
- ``columns`` (only with several columns): a ridge on the columns alone.

:func:`few_shot` blends them by how well each ranks the labelled networks in leave-one-out. Used by
task transfer (20 labels per TransNAS task) and by the GENNAPE protocol's 50-shot rows.
"""
from __future__ import annotations

import numpy as np


def _zero_shot(p, e, y):
    return lambda p, e: p.mean(1)


def _correlation_weighted(p, e, y):
    """Each zero-shot column weighted by its correlation with the labels (negative when the target
    runs against that source task, as autoencoder runs against the others)."""
    mean = p.mean(0)
    centred, yc = p - mean, y - y.mean()
    weights = centred.T @ yc / (np.linalg.norm(centred, axis=0) * np.linalg.norm(yc) + 1e-12)
    return lambda p, e: (p - mean) @ weights


def ridge_on(features):
    """A candidate: ridge on ``features(p, e)``, standardised, regularisation by leave-one-out."""

    def fit(p, e, y):
        from sklearn.linear_model import RidgeCV

        x = features(p, e)
        mean, std = x.mean(0), x.std(0) + 1e-8
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit((x - mean) / std, y)
        return lambda p, e: ridge.predict((features(p, e) - mean) / std)

    return fit


FEW_SHOT_CANDIDATES = {
    "zero-shot": _zero_shot,
    "correlation-weighted": _correlation_weighted,
    "ridge": ridge_on(lambda p, e: np.concatenate([p, e], 1)),
    "size": ridge_on(lambda p, e: np.concatenate([p, e[:, -2:]], 1)),  # embeddings end with log FLOPs, params
}
# With several zero-shot columns (one per source task or device), also a ridge on the columns alone: the
# multivariate form of the correlation weighting (on 14 TransNAS tasks' 20-shot dumps, 20 draws, mean
# SRCC 0.837 -> 0.853; micro autoencoder 0.595 -> 0.706). With one column it would repeat the zero-shot ranking.
COLUMN_CANDIDATES = {"columns": ridge_on(lambda p, e: p)}
# Weights are max(0, leave-one-out SRCC)^WEIGHT_POWER: chosen on NB-201 / NB-301 50-shot and the 14
# TransNAS tasks' 20-shot dumps (mean SRCC 0.802 with power 2, 0.810 with 4, 0.812 with 8).
WEIGHT_POWER = 4


def _leave_one_out(fit, p: np.ndarray, e: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Each labelled network predicted by the candidate ``fit`` on all the others."""
    keep = ~np.eye(len(z), dtype=bool)
    return np.array([fit(p[k], e[k], z[k])(p[i:i + 1], e[i:i + 1])[0] for i, k in enumerate(keep)])


class FewShotBlend:
    """The few-shot blend as a fit / predict object: ``fit(p, e, y)`` on the labelled
    networks' zero-shot columns ``p`` and embeddings ``e``, then ``predict(p, e)`` for any networks,
    each on its own. The candidates (default :data:`FEW_SHOT_CANDIDATES`, plus
    :data:`COLUMN_CANDIDATES` with several columns) are averaged, z-scored on the support set, with
    weights max(0, leave-one-out SRCC on the support set)^:data:`WEIGHT_POWER`. 20 labels cannot
    refit a head without overfitting, and picking the single best candidate is noisy; the weights
    tell how far the zero-shot ranking holds, should be reweighted, or should give way to a ridge on
    the embedding or on size (TransNAS macro, where the classification backbone's own ranking runs
    backwards). The blend reaches the label scale through :func:`label_scale_map`, fitted on the
    support labels and the blend's own leave-one-out predictions. ``weights_`` maps each candidate
    to its share; ``loo_`` holds every candidate's leave-one-out predictions, which ``fit(...,
    loo=)`` takes back to refit without repeating them (n fits per candidate)."""

    def __init__(self, candidates: dict | None = None):
        self.candidates = candidates

    def fit(self, p: np.ndarray, e: np.ndarray, y: np.ndarray, loo: dict | None = None) -> "FewShotBlend":
        from scipy.stats import spearmanr

        candidates = self.candidates
        if candidates is None:
            candidates = {**FEW_SHOT_CANDIDATES, **(COLUMN_CANDIDATES if p.shape[1] > 1 else {})}
        z = (y - y.mean()) / (y.std() + 1e-12)
        weights, self.models_, self.loo_, held_out = {}, {}, {}, {}
        for name, fit in candidates.items():
            self.loo_[name] = _leave_one_out(fit, p, e, z) if loo is None else np.asarray(loo[name])
            score = spearmanr(self.loo_[name], z).statistic if np.std(self.loo_[name]) > 0 else 0.0
            weights[name] = max(float(np.nan_to_num(score)), 0.0) ** WEIGHT_POWER
            model = fit(p, e, z)
            fitted = model(p, e)  # z-scored on the support set: each query is predicted on its own
            centre, spread = fitted.mean(), fitted.std() + 1e-12
            self.models_[name], held_out[name] = (model, centre, spread), (self.loo_[name] - centre) / spread
        if sum(weights.values()) == 0:  # nothing ranks the support set: keep the zero-shot ranking
            weights["zero-shot"] = 1.0
        total = sum(weights.values())
        self.weights_ = {name: w / total for name, w in weights.items() if w > 0}
        self.label_map_ = label_scale_map(sum(w * held_out[name] for name, w in self.weights_.items()), y)
        return self

    def predict(self, p: np.ndarray, e: np.ndarray) -> np.ndarray:
        ranking = sum(w * (self.models_[name][0](p, e) - self.models_[name][1]) / self.models_[name][2]
                      for name, w in self.weights_.items())
        return self.label_map_(ranking)

    def describe(self) -> str:
        return ", ".join(f"{name} {w:.2f}" for name, w in self.weights_.items())


def few_shot(p_support, e_support, y_support, p_query, e_query, candidates: dict | None = None,
             constant: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, str]:
    """:class:`FewShotBlend` fitted on the support set and predicting the query, on the label scale.
    ``constant`` = (support mask, query mask) marks networks whose output ignores the input
    (``predictors.model.input_independent``): their predictions become :func:`constant_network_label`
    (they stay in the fits: leaving them out lowered NB-201 50-shot SRCC by 0.005-0.02 over 5 draws).
    Returns the prediction and the weights."""
    blend = FewShotBlend(candidates).fit(p_support, e_support, y_support)
    pred = blend.predict(p_query, e_query)
    if constant is not None:
        pred = constant_network_label(pred, constant[1], y_support, constant[0])
    return pred, blend.describe()


def label_scale_map(score: np.ndarray, y: np.ndarray):
    """A strictly increasing map from held-out ranking scores to labels (so it never changes a ranking):
    the least-squares line and the isotonic fit of ``y`` on ``score``, averaged with weights 1 / their
    squared leave-one-out mean absolute error. The line shrinks a ranker that is only partly right
    towards the mean instead of stretching it to the labels' full spread; the isotonic fit follows
    labels that are far from normal (TransNAS micro: a cluster of failed networks far below the
    rest), where any line spreads the good networks over the gap (20-shot MAE on micro class_scene
    1.49 -> 0.91 points, jigsaw 4.93 -> 3.51: ``experiments/results/task_transfer.md``). On unimodal
    labels (TransNAS macro) the line wins the leave-one-out and keeps most of the weight (MAE within
    0.02 points of the line alone). Below 3 labels there is no leave-one-out line: the line alone."""
    from sklearn.isotonic import IsotonicRegression

    def line(s, t):
        floor = 1e-6 * (t.std() or 1.0) / (s.std() + 1e-12)  # a slope > 0 keeps the ranking, in the labels' units
        slope = max(floor, np.cov(s, t)[0, 1] / (s.var(ddof=1) + 1e-12))  # max(floor, nan) is the floor
        return lambda x: t.mean() + slope * (x - s.mean())

    def isotonic(s, t):
        return IsotonicRegression(out_of_bounds="clip").fit(s, t).predict

    if len(y) < 3:
        return line(score, y)
    maps, weights = [], []
    for fit in (line, isotonic):
        held_out = np.array([fit(np.delete(score, i), np.delete(y, i))(score[i:i + 1])[0]
                             for i in range(len(y))])
        error = max(np.abs(held_out - y).mean(), 1e-3 * (y.std() or 1.0))  # a perfect fit does not take all the weight
        weights.append(1.0 / error ** 2)
        maps.append(fit(score, y))
    total = sum(weights)
    return lambda x: sum(w * m(x) for w, m in zip(weights, maps)) / total


def constant_network_label(pred: np.ndarray, constant_query: np.ndarray, y_support: np.ndarray,
                           constant_support: np.ndarray) -> np.ndarray:
    """``pred`` with the networks whose output ignores the input set to their shared label.

    Such a network computes a constant, so every one of them scores what a constant predictor
    scores on the task: exactly one value per task in NB-201 (chance) and TransNAS-Bench-101 (14.15
    on micro class_scene, 0.14 on jigsaw). Not always the worst (26.5 on micro class_object, where
    some working networks score 23.4), so the value is read off the labelled ones when any are
    constant; else it is the lowest label or prediction seen, a floor."""
    pred = np.array(pred, dtype=float, copy=True)
    if constant_query.any():
        known = y_support[constant_support]
        pred[constant_query] = known.mean() if len(known) else min(y_support.min(), pred[~constant_query].min(initial=np.inf))
    return pred
