"""Transfer across tasks on real labels: NB-201's three datasets stand in for three tasks
(TransNAS CGs take a traced export per network, too slow for the suite; the experiment script
runs the TransNAS protocol)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench_data.datasets import CGDataset
from bench_data.paths import MissingBenchmarkFile
from predictors.api import checkpoint_path
from predictors.metrics import srcc
from predictors.model import PerformancePredictor
from predictors.few_shot import few_shot
from predictors.task_transfer import (KAdapters, TaskConditionedAdapter, attach_backbone_states,
                                      backbone_embedding, fit_adapter)

TASKS = ("cifar10", "cifar100", "imagenet16")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    import os

    os.environ["CGPREDICT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        datasets = {t: CGDataset(f"nb201/{t}", workers=0, limit=300) for t in TASKS}
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    finally:
        del os.environ["CGPREDICT_CACHE"]
    state = torch.load(checkpoint_path("default"), map_location="cpu", weights_only=False)
    model = PerformancePredictor(**state["hparams"]).eval()
    model.load_state_dict(state["state_dict"], strict=False)
    return {t: attach_backbone_states(model.encoder, list(d)) for t, d in datasets.items()}


def _labels(graphs):
    return np.array([float(g.y) for g in graphs])


def test_backbone_states_match_the_encoder(tasks):
    graphs = tasks["cifar10"]
    assert graphs[0].states.shape == (graphs[0].num_nodes, 5, 64)
    embedding = backbone_embedding(graphs[:3])
    assert embedding.shape == (3, 66) and np.isfinite(embedding).all()


def test_kadapters_and_task_conditioning_transfer_zero_shot(tasks):
    """Adapters trained on CIFAR-100 and ImageNet16 rank CIFAR-10 networks they never saw labelled."""
    sources = {t: tasks[t] for t in ("cifar100", "imagenet16")}
    adapters = KAdapters({t: fit_adapter(g, 64, 4, max_epochs=8, check_every=2) for t, g in sources.items()})
    target = tasks["cifar10"]
    y = _labels(target)
    assert srcc(adapters.predict(target, exclude="cifar10").numpy(), y) > 0.7
    assert adapters.predictions(target).shape == (len(target), 2)
    conditioned = TaskConditionedAdapter(list(sources), 64, 4).fit(sources, max_epochs=4)
    assert srcc(conditioned.predict(target).numpy(), y) > 0.7


def test_adapters_keep_their_best_held_out_epoch(tasks):
    """Early stopping holds out networks of the source task itself and returns the weights of the
    best check, not the last epoch's: the recorded held-out SRCC is what the returned adapter scores."""
    from predictors.task_transfer import _held_out_srcc, _split

    graphs = tasks["cifar100"]
    adapter = fit_adapter(graphs, 64, 4, max_epochs=12, check_every=1, patience=12)
    assert 1 <= adapter.best_epoch <= 12
    _, held_out = _split(graphs, 0.1, seed=0)
    assert len(held_out) == 30
    assert _held_out_srcc(adapter, held_out) == pytest.approx(adapter.val_srcc)
    assert adapter.val_srcc > 0.7


def test_few_shot_turns_a_backwards_zero_shot_ranking_around(tasks):
    """Zero-shot columns that rank backwards (TransNAS macro's case) must not survive 20 labels."""
    graphs = tasks["cifar10"]
    y = _labels(graphs)
    backwards = -(y - y.mean())[:, None] + np.random.default_rng(0).normal(0, 2, (len(y), 1))
    embedding = backbone_embedding(graphs)
    support, query = np.arange(20), np.arange(20, len(y))
    prediction, weights = few_shot(backwards[support], embedding[support], y[support], backwards[query], embedding[query])
    assert "zero-shot" not in weights  # a backwards ranking gets no weight
    assert srcc(backwards[query, 0], y[query]) < -0.5 and srcc(prediction, y[query]) > 0.5
    # a zero-shot ranking that already holds is kept (or improved), not thrown away
    forwards = -backwards
    prediction, _ = few_shot(forwards[support], embedding[support], y[support], forwards[query], embedding[query])
    assert srcc(prediction, y[query]) > srcc(forwards[query, 0], y[query]) - 0.05
    # each network is predicted on its own, whatever else is in the query
    alone, _ = few_shot(forwards[support], embedding[support], y[support], forwards[query[:3]], embedding[query[:3]])
    assert np.allclose(alone, prediction[:3])
    # on the label scale: closer to the truth than the support labels' mean
    error = np.abs(prediction - y[query]).mean()
    assert error < 0.8 * np.abs(y[support].mean() - y[query]).mean()


def test_networks_that_ignore_their_input_share_one_label(tasks):
    """The mask finds exactly the NB-201 networks at chance (10 % on CIFAR-10) from their CGs, and
    few-shot predictions give them the labelled constant networks' value, or else a floor."""
    from predictors.model import constant_output_mask

    graphs = tasks["cifar10"]
    y = _labels(graphs)
    constant = constant_output_mask(graphs)
    assert constant.sum() >= 3 and np.array_equal(constant, y == 10.0)  # every other network is far above chance
    embedding = backbone_embedding(graphs)
    column = embedding[:, -2:-1]  # log FLOPs as a zero-shot column
    first = np.flatnonzero(constant)[0]
    for has_constant in (True, False):
        working = np.flatnonzero(~constant)[:20 - has_constant]
        support = np.concatenate([working, [first]]) if has_constant else working
        query = np.setdiff1d(np.arange(len(y)), support)
        mask = (constant[support], constant[query])
        prediction, _ = few_shot(column[support], embedding[support], y[support], column[query], embedding[query], constant=mask)
        if has_constant:
            assert np.all(prediction[mask[1]] == 10.0)
        else:
            assert np.all(prediction[mask[1]] <= prediction[~mask[1]].min())
