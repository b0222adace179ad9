"""Size as a prior for families a checkpoint never saw: the FLOPs prior ensemble and size-residual
labels, on real NB-201 networks and NB-301 labels."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import yaml

from bench_data import registry
from bench_data.paths import MissingBenchmarkFile
from graph_encoders import onnx_to_cg
from predictors.api import Predictor
from predictors.label_transform import LabelTransform
from predictors.metrics import srcc
from predictors.size_prior import SizePrior, main

from .test_cli_convert import run_predict
from .test_predictor_api import _random_predictor


@pytest.fixture(scope="module")
def nb201(nb201_records):
    space = registry.get_space("nb201")
    chosen = [nb201_records[i] for i in np.random.default_rng(1).choice(len(nb201_records), 300, replace=False)]
    return [space.to_onnx(r.arch) for r in chosen], np.array([r.targets["cifar10"] for r in chosen])


@pytest.fixture(scope="module")
def nb301_labels():
    """NB-301's CIFAR-10 accuracies and MACs (NASLib's FLOPs count), as tensors."""
    try:
        records = registry.load_records("nb301")
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    return (torch.tensor([r.targets["cifar10"] for r in records]),
            torch.tensor([r.targets["zc:flops"] * 1e6 for r in records]))


@pytest.fixture(scope="module")
def nb301_halves(nb301_labels):
    """NB-301's labels and MACs, with the indices of its smaller and larger half by MACs."""
    y, macs = nb301_labels
    order = torch.argsort(macs)
    return y, macs, order[: len(order) // 2], order[len(order) // 2:]


def test_the_prior_is_a_non_decreasing_fit_that_travels_in_the_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    macs = 10 ** rng.uniform(6, 9, 400)
    accuracy = 60 + 3 * np.log10(macs) + rng.normal(0, 2, 400)
    prior = SizePrior.fit(macs, accuracy)
    grid = np.logspace(5, 10, 50)  # beyond the fitted range too: falling below it, held above it
    assert np.all(np.diff(prior.predict(grid)) >= 0) and prior.predict([1e5]) < prior.predict([1e6 * 0.999])
    assert prior.predict([1e10]) == prior.predict([1e9 * 1.001])
    assert srcc(prior.predict(macs), macs) > 0.95  # recovers the trend under the noise
    predictor = _random_predictor()
    predictor.size_prior = prior
    predictor.save(tmp_path / "with_prior.ckpt")
    loaded = Predictor.from_pretrained(tmp_path / "with_prior.ckpt").size_prior
    assert np.array_equal(loaded.predict(grid), prior.predict(grid))


def test_the_size_prior_ensemble_is_the_mean_of_network_and_prior(nb201, tmp_path):
    """``size_prior=True`` (``predict --size-prior``): the mean of the network's accuracy and the
    prior, chance kept at chance, the score ranking as that accuracy, the CLI equal to the API. (Its
    lift belongs to z-score checkpoints: 0.771 -> 0.852 on NB-201's 4,096 with the z-score ``nb101``
    of sessions 1-13; ``nb101`` now carries the prior inside, experiments/results/README.md.)"""
    models, y = nb201
    graphs = [onnx_to_cg(m) for m in models]
    predictor = Predictor.from_pretrained("nb101")
    plain, ensemble = predictor.predict(graphs), predictor.predict(graphs, size_prior=True)
    a, b = (np.array([p.accuracy for p in rows]) for rows in (plain, ensemble))
    constant = np.array([g.constant_output for g in graphs])
    prior = predictor.size_prior.predict([g.macs for g in graphs])
    assert np.allclose(b, np.where(constant, a, (a + prior) / 2), atol=1e-4)  # chance stays chance
    assert srcc([p.score for p in ensemble], y) == pytest.approx(srcc(b, y))  # the score ranks as the accuracy
    paths = []
    for i, model in enumerate(models[:3]):
        paths.append(tmp_path / f"net{i}.onnx")
        onnx.save(model, paths[-1])
    rows = json.loads(run_predict(*paths, "--checkpoint", "nb101", "--size-prior", "--json").stdout)
    assert [r["accuracy"] for r in rows] == pytest.approx(b[:3], abs=1e-3)
    no_prior = tmp_path / "random.ckpt"
    _random_predictor().save(no_prior)
    result = run_predict(paths[0], "--checkpoint", no_prior, "--size-prior")
    assert result.returncode == 2 and "no size prior" in result.stderr


def test_the_command_fits_the_prior_on_the_recipe_training_split(tmp_path):
    config = {"data": {"keys": ["nb201/cifar10"], "limit": 300, "split": [0.8, 0.1, 0.1], "seed": 0, "workers": 0}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(config))
    _random_predictor().save(tmp_path / "base.ckpt")
    try:
        main(["--checkpoint", str(tmp_path / "base.ckpt"), "--config", str(tmp_path / "recipe.yaml"),
              "--out", str(tmp_path / "out.ckpt")])
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    predictor = Predictor.from_pretrained(tmp_path / "out.ckpt")
    assert "240 networks" in predictor.metadata["size_prior"]["data"]  # the 80 % training split of 300
    assert np.all(np.diff(predictor.size_prior.accuracy) >= 0) and predictor.size_prior.accuracy.max() < 95


def test_size_label_transform_leaves_the_network_what_flops_do_not_explain(nb301_labels):
    """``label_transform: size`` subtracts the isotonic FLOPs fit: on NB-301's networks the labels rank
    with FLOPs at 0.48, their transformed values on held-out networks at about 0 (measured -0.01); the
    transform inverts exactly and its fit travels in the state dict."""
    y, macs = nb301_labels
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    fit, held_out = order[:360], order[360:]
    transform = LabelTransform("size").fit(y[fit], macs[fit])
    z = transform(y[held_out], macs[held_out])
    assert srcc(y[held_out].numpy(), macs[held_out].numpy()) > 0.4
    assert abs(srcc(z.numpy(), macs[held_out].numpy())) < 0.1
    assert torch.allclose(transform.inverse(z, macs[held_out]), y[held_out], atol=1e-4)
    loaded = LabelTransform("size")
    loaded.load_state_dict(transform.state_dict())
    assert torch.equal(loaded.inverse(z, macs[held_out]), transform.inverse(z, macs[held_out]))
    # the ranking score ranks like the accuracy (the network's own output leaves size out)
    assert srcc(transform.ranking_score(z, macs[held_out]).numpy(), y[held_out].numpy()) == pytest.approx(1.0)
    # fine-tuning on a handful of labels: its epoch 0 keeps h, its training drops it (a plain z-score)
    few = LabelTransform("size")
    few.load_state_dict(transform.state_dict())
    few.fit(y[:50], macs[:50], size_effect="keep")
    assert torch.equal(few.size_effect, transform.size_effect)
    few.fit(y[:50], macs[:50], size_effect="drop")
    assert torch.allclose(few(y, macs), LabelTransform("zscore").fit(y[:50], macs[:50])(y, macs))


def test_size_effect_keeps_falling_below_the_smallest_training_network(nb301_halves):
    """Fitted on NB-301's larger half, h (and the size prior) still rank the smaller half by size
    (accuracy keeps falling with FLOPs there) instead of giving them all the smallest training
    network's value."""
    y, macs, small, large = nb301_halves
    transform = LabelTransform("size").fit(y[large], macs[large])
    effect = transform.ranking_score(torch.zeros(len(small)), macs[small])
    assert float(effect.max()) <= float(transform.size_effect[0] / transform.std) + 1e-6
    assert srcc(effect.numpy(), macs[small].numpy()) == pytest.approx(1.0)
    assert srcc(effect.numpy(), y[small].numpy()) > 0.3  # measured 0.38; held flat it would be undefined
    prior = SizePrior.fit(macs[large].numpy(), y[large].numpy())  # the ensemble's prior extends the same way
    assert srcc(prior.predict(macs[small].numpy()), y[small].numpy()) > 0.3


@pytest.mark.parametrize("window", [0.0, 0.1, 0.25, 0.5])
def test_the_network_and_the_prior_extend_size_by_one_rule(nb301_halves, monkeypatch, window):
    """Below the training FLOPs, size-residual labels' h and the size prior fall along the same slope,
    that of their lowest ``TAIL_WINDOW``, continuous at the smallest training network; window 0 holds
    them flat."""
    from predictors import size_prior

    monkeypatch.setattr(size_prior, "TAIL_WINDOW", window)
    y, macs, small, large = nb301_halves
    transform = LabelTransform("size").fit(y[large], macs[large])
    prior = SizePrior.fit(macs[large].numpy(), y[large].numpy())
    below = transform.ranking_score(torch.zeros(len(small)), macs[small]) * transform.std
    assert np.allclose(below.numpy(), prior.predict(macs[small].numpy()), atol=1e-3)
    smallest = macs[large].min()
    edge = transform.ranking_score(torch.zeros(2), torch.stack([smallest * 0.999, smallest])) * transform.std
    assert float(edge[1] - edge[0]) == pytest.approx(0.0, abs=0.01)
    assert (float(below.std()) < 1e-3) == (window == 0.0)  # flat only at window 0


def test_a_checkpoint_extends_size_by_the_window_it_was_fitted_with(nb301_halves, monkeypatch):
    """Saved and loaded, h and the size prior keep the tail window of their fit whatever
    ``TAIL_WINDOW`` says later; a state saved before the window was stored loads (strictly, inside
    a whole predictor too) with ``LEGACY_TAIL_WINDOW``."""
    from predictors import size_prior
    from predictors.model import PerformancePredictor

    y, macs, small, large = nb301_halves
    transform = LabelTransform("size")  # built under one window, fitted under another
    monkeypatch.setattr(size_prior, "TAIL_WINDOW", 0.5)
    transform.fit(y[large], macs[large])
    assert float(transform.tail_window) == pytest.approx(0.5)
    prior = SizePrior.fit(macs[large].numpy(), y[large].numpy())
    below = transform.ranking_score(torch.zeros(len(small)), macs[small])
    prior_below = prior.predict(macs[small].numpy())
    state, prior_state = transform.state_dict(), json.loads(json.dumps(prior.to_state()))

    monkeypatch.setattr(size_prior, "TAIL_WINDOW", 0.1)
    reloaded = LabelTransform("size")
    reloaded.load_state_dict(state)
    assert torch.allclose(reloaded.ranking_score(torch.zeros(len(small)), macs[small]), below)
    assert np.allclose(SizePrior.from_state(prior_state).predict(macs[small].numpy()), prior_below)
    assert np.allclose(prior.predict(macs[small].numpy()), prior_below)

    legacy = LabelTransform("size")
    legacy.load_state_dict({k: v for k, v in state.items() if k != "tail_window"})
    assert float(legacy.tail_window) == pytest.approx(size_prior.LEGACY_TAIL_WINDOW)
    assert not torch.allclose(legacy.ranking_score(torch.zeros(len(small)), macs[small]), below)
    legacy_prior = SizePrior.from_state({k: v for k, v in prior_state.items() if k != "tail_window"})
    assert legacy_prior.tail_window == pytest.approx(size_prior.LEGACY_TAIL_WINDOW)
    assert not np.allclose(legacy_prior.predict(macs[small].numpy()), prior_below)
    model = PerformancePredictor(width=16, layers=1, label_transform="size")
    old_format = {k: v for k, v in model.state_dict().items() if k != "transform.tail_window"}
    PerformancePredictor(width=16, layers=1, label_transform="size").load_state_dict(old_format)  # strict
