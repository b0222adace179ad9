"""The few-shot label-scale map on real TransNAS-Bench-101 labels, ranked by a real zero-cost proxy."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from bench_data import registry
from bench_data.paths import MissingBenchmarkFile
from predictors.few_shot import label_scale_map


def _labels_and_jacov(space: str, task: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        records = registry.load_records(space, target=task)
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    records = [r for r in records if np.isfinite(r.targets.get("zc:jacov", np.nan))]
    return np.array([r.targets[task] for r in records]), np.array([r.targets["zc:jacov"] for r in records])


@pytest.mark.parametrize("task", ["class_scene", "jigsaw"])
def test_label_scale_map_keeps_the_ranking_and_follows_a_failed_cluster(task):
    """Micro labels have a cluster of failed networks far below the rest (jigsaw: 9 % of the networks
    jacov scores under 12 %, the median 90.6 %). From 20 labels the map must keep the proxy's ranking
    exactly and land closer to the labels than the least-squares line, which spreads the good
    networks over the gap."""
    y, jacov = _labels_and_jacov("tnb_micro", task)
    map_errors, line_errors = [], []
    for draw in range(10):
        support = np.random.default_rng(draw).choice(len(y), 20, replace=False)
        query = np.setdiff1d(np.arange(len(y)), support)
        prediction = label_scale_map(jacov[support], y[support])(jacov[query])
        _assert_strictly_increasing(jacov[query], prediction)
        slope, intercept = np.polyfit(jacov[support], y[support], 1)
        map_errors.append(np.abs(prediction - y[query]).mean())
        line_errors.append(np.abs(slope * jacov[query] + intercept - y[query]).mean())
    assert np.mean(map_errors) < 0.85 * np.mean(line_errors)


def _assert_strictly_increasing(score: np.ndarray, prediction: np.ndarray) -> None:
    order = np.argsort(score, kind="stable")
    rises = np.diff(score[order]) > 0
    assert (np.diff(prediction[order])[rises] > 0).all()


@pytest.mark.parametrize("labels", ["backwards", "constant", "two"])
def test_label_scale_map_never_ties_or_flips_a_ranking(labels):
    """Whatever the labels say, the map keeps the scores' order: labels that run against the scores,
    labels that are all equal, and too few labels for a leave-one-out fit (2)."""
    score = np.linspace(-1.0, 2.0, 12)
    y = {"backwards": 90.0 - 3.0 * score, "constant": np.full(12, 10.0), "two": np.array([80.0, 85.0])}[labels]
    query = np.linspace(-3.0, 4.0, 50)  # beyond the labelled scores on both sides too
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no degenerate fit underneath (a one-point covariance warns)
        prediction = label_scale_map(score[:len(y)], y)(query)
    assert np.isfinite(prediction).all()
    _assert_strictly_increasing(query, prediction)


TASKS = ("class_scene", "class_object", "jigsaw", "autoencoder", "normal", "room_layout", "segmentsemantic")


def test_several_source_columns_earn_a_ridge_of_their_own():
    """The ``columns`` candidate, in the setting it is for: one zero-shot column per source task.
    Here the columns are the other six TransNAS micro tasks' real labels (perfect source predictors)
    and the target is autoencoder, which they rank only in combination (it runs against several).
    From 20 labels, the blend with the ridge on the columns must rank the rest better than the blend
    without it, and better than a blend given one more copy of the embedding ridge instead: the
    gain is the columns-only fit, not more weight on ridges."""
    try:
        by_task = {t: {r.arch: r.targets for r in registry.load_records("tnb_micro", target=t)} for t in TASKS}
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    from scipy.stats import spearmanr

    from predictors.few_shot import FEW_SHOT_CANDIDATES, few_shot

    archs = sorted(set.intersection(*(set(labels) for labels in by_task.values())))
    target = by_task["autoencoder"]
    y = np.array([target[a]["autoencoder"] for a in archs])
    columns = np.array([[by_task[t][a][t] for t in TASKS if t != "autoencoder"] for a in archs])
    columns = (columns - columns.mean(0)) / columns.std(0)
    size = np.log([[target[a]["zc:flops"], target[a]["zc:params"]] for a in archs])  # the embedding's last two
    controls = {"without": dict(FEW_SHOT_CANDIDATES),
                "another ridge": {**FEW_SHOT_CANDIDATES, "copy": FEW_SHOT_CANDIDATES["ridge"]}}
    gains = {name: [] for name in controls}
    for draw in range(10):
        support = np.random.default_rng(draw).choice(len(y), 20, replace=False)
        query = np.setdiff1d(np.arange(len(y)), support)
        args = columns[support], size[support], y[support], columns[query], size[query]
        blended, weights = few_shot(*args)
        assert "columns" in weights
        for name, candidates in controls.items():
            gains[name].append(spearmanr(blended, y[query]).statistic
                               - spearmanr(few_shot(*args, candidates=candidates)[0], y[query]).statistic)
    assert np.mean(gains["without"]) > 0.01 and np.sum(np.array(gains["without"]) > 0) >= 8
    assert np.mean(gains["another ridge"]) > 0.005 and np.sum(np.array(gains["another ridge"]) > 0) >= 7
