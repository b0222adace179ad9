"""The simple baselines every predictor table must show, on the same labels.

* :func:`flops_params_baselines` -- rank by FLOPs alone / by parameter count alone;
* :func:`zero_cost_columns` -- the zero-cost proxy scores the label files carry (score them
  with :func:`rank_correlation`);
* :func:`random_forest_baseline` -- a random forest on the space's own encoding
  (:mod:`bench_data.encodings`), optionally with extra per-arch features such as proxies.

A learned predictor that does not beat these has not learned anything the benchmark's
metadata did not already say. Correlations come from :mod:`predictors.metrics`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bench_data.encodings import encode_many
from bench_data.registry import space_names

from .metrics import kendall_tau, srcc

ZC_PREFIX = "zc:"
RF_TREES = 300


def _vector(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """``values`` as a 1-D float array (length ``n`` when given), else a clear ValueError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} values, expected {n}")
    return array


def rank_correlation(score: Any, true: Any) -> dict[str, float]:
    """SRCC and Kendall tau of ``score`` against ``true`` over the pairs where both are
    finite (proxies are missing for some archs); ``n`` is how many pairs were used."""
    true = _vector(true, "true")
    score = _vector(score, "score", len(true))
    keep = np.isfinite(score) & np.isfinite(true)
    if keep.sum() < 2:
        raise ValueError(f"need at least 2 finite (score, true) pairs, got {int(keep.sum())}")
    return {"srcc": srcc(score[keep], true[keep]), "kendall": kendall_tau(score[keep], true[keep]),
            "n": int(keep.sum())}


def flops_params_baselines(macs: Any, params: Any, true: Any) -> dict[str, dict[str, float]]:
    """``{"flops": {...}, "params": {...}}``: :func:`rank_correlation` of FLOPs (or MACs,
    the ranking is the same) alone and of the parameter count alone against the labels.
    Pass ``None`` for a quantity the benchmark does not store; its entry is left out."""
    out = {}
    for name, values in (("flops", macs), ("params", params)):
        if values is not None:
            out[name] = rank_correlation(values, true)
    if not out:
        raise ValueError("give at least one of macs and params")
    return out


def zero_cost_columns(space_name: str, records: Sequence[Any]) -> dict[str, np.ndarray]:
    """The zero-cost proxy scores stored with ``records``, one array per proxy (NaN where
    an arch lacks it, e.g. a proxy NASLib failed to compute).

    NB-301 and TransNAS records (NASLib zero-cost files) carry them as targets
    ``"zc:<proxy>"`` (returned under ``<proxy>``, including ``flops`` and ``params``); NB-201
    records carry the NASWOT score of NASWOT's own file as ``"naswot"`` (all but 341 cells) and
    NASLib's as ``"zc:<proxy>"`` for the 725 cells of its subset. Other spaces give an empty dict.
    """
    if space_name not in space_names():
        raise KeyError(f"unknown search space {space_name!r}; known: {', '.join(space_names())}")
    try:
        targets = [record.targets for record in records]
    except AttributeError:
        raise ValueError("records must be ArchRecords (as load_records returns)") from None
    names = {}  # proxy -> target name, in order of first appearance
    for t in targets:
        for key in t:
            if key.startswith(ZC_PREFIX):
                names.setdefault(key[len(ZC_PREFIX):], key)
    if space_name == "nb201":
        names["naswot"] = "naswot"
    return {proxy: np.array([t.get(key, np.nan) for t in targets], dtype=float)
            for proxy, key in names.items()}


def _features(space_name: str, archs: Sequence[Any], extra: Any, name: str) -> np.ndarray:
    x = encode_many(space_name, archs)
    if extra is None:
        return x
    extra = np.asarray(extra, dtype=float)
    extra = extra[:, None] if extra.ndim == 1 else extra
    if extra.ndim != 2 or len(extra) != len(x):
        raise ValueError(f"{name} must be (n_archs,) or (n_archs, k) with n_archs={len(x)}, "
                         f"got shape {extra.shape}")
    return np.hstack([x, extra])


def random_forest_baseline(space_name: str, train_archs: Sequence[Any], train_y: Any,
                           test_archs: Sequence[Any], seed: int = 0, extra_train: Any = None,
                           extra_test: Any = None) -> np.ndarray:
    """Predictions for ``test_archs`` of a ``RandomForestRegressor`` (300 trees, ``seed``,
    one job) fit on the space encoding of ``train_archs`` -> ``train_y``.

    ``extra_train`` / ``extra_test`` (both or neither; shape ``(n,)`` or ``(n, k)``) are
    appended to the encoding, e.g. zero-cost scores; NaN there is allowed (scikit-learn's
    forests route missing values), NaN in ``train_y`` is not.
    """
    from sklearn.ensemble import RandomForestRegressor

    train_archs, test_archs = list(train_archs), list(test_archs)
    if len(train_archs) < 2 or not test_archs:
        raise ValueError(f"need >= 2 training and >= 1 test archs, got {len(train_archs)} "
                         f"and {len(test_archs)}")
    y = _vector(train_y, "train_y", len(train_archs))
    if not np.isfinite(y).all():
        raise ValueError("train_y contains NaN or infinite values")
    if (extra_train is None) != (extra_test is None):
        raise ValueError("give extra_train and extra_test together (or neither)")
    x_train = _features(space_name, train_archs, extra_train, "extra_train")
    x_test = _features(space_name, test_archs, extra_test, "extra_test")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"extra_train has {x_train.shape[1]} feature columns in all, "
                         f"extra_test {x_test.shape[1]}")
    forest = RandomForestRegressor(n_estimators=RF_TREES, random_state=seed, n_jobs=1)
    return forest.fit(x_train, y).predict(x_test)


__all__ = ["rank_correlation", "flops_params_baselines", "zero_cost_columns",
           "random_forest_baseline"]
