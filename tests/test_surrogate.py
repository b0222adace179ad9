"""The NAS-loop surrogate: scikit-learn conventions and NASLib's interface, on real NB-201 labels."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from predictors.api import available_checkpoints
from predictors.metrics import srcc
from predictors.surrogate import CGSurrogate, NASLibPredictor

pytestmark = pytest.mark.skipif("nb101" not in available_checkpoints(), reason="the nb101 checkpoint is not shipped")


@pytest.fixture(scope="module")
def nb201(nb201_records):
    rng = np.random.default_rng(0)
    chosen = [nb201_records[i] for i in rng.choice(len(nb201_records), 120, replace=False)]
    return [r.arch for r in chosen], np.array([r.targets["cifar10"] for r in chosen])


def test_estimator_contract(nb201):
    archs, y = nb201
    surrogate = CGSurrogate(space="nb201", checkpoint="nb101", epochs=60)
    assert clone(surrogate).get_params() == surrogate.get_params()
    zero_shot = surrogate.predict(archs[40:])  # before fit: the pretrained checkpoint answers
    assert surrogate.fit(archs[:40], y[:40]) is surrogate and surrogate.n_train_ == 40
    mean, std = surrogate.predict(archs[40:], return_std=True)
    chance = y[40:] == 10.0  # networks whose output ignores the input: chance stated, with no uncertainty
    assert mean.shape == std.shape == (80,) and chance.any() and np.array_equal(std > 0, ~chance)
    assert mean[chance] == pytest.approx(10.0, abs=1e-3)
    assert srcc(mean, y[40:]) > 0.6
    assert abs(mean.mean() - y[40:].mean()) < abs(zero_shot.mean() - y[40:].mean()) + 1.0  # now on NB-201's scale
    assert surrogate.score(archs[40:], y[40:]) > 0  # RegressorMixin R^2 works on our predictions
    with pytest.raises(ValueError, match="labels"):
        surrogate.fit(archs[:10], y[:9])


def test_naslib_interface(nb201):
    archs, y = nb201
    predictor = NASLibPredictor("nb201", checkpoint="nb101", epochs=40)
    predictor.fit(archs[:30], y[:30])
    out = predictor.query(archs[30:60])
    assert out.shape == (30,) and np.isfinite(out).all()


def test_several_objectives_and_a_new_latency_device(nb201, nb201_records):
    """accuracy + latency at once; a device the checkpoint does not know is learnt from measurements."""
    from predictors.api import Predictor

    if not Predictor.from_pretrained("default").latency_devices:
        pytest.skip("the default checkpoint has no latency heads")
    if "latency:eyeriss" not in nb201_records[0].targets:
        pytest.skip("HELP's NB-201 latency file is absent")
    archs, y = nb201
    records = {r.arch: r for r in nb201_records}
    eyeriss = np.array([records[a].targets["latency:eyeriss"] for a in archs])
    known = CGSurrogate(space="nb201", objectives=("accuracy", "latency:eyeriss"))
    before = known.predict(archs[40:])
    assert before.shape == (80, 2) and srcc(before[:, 1], eyeriss[40:]) > 0.9  # trained on eyeriss
    measured = np.c_[y[:40], eyeriss[:40]]
    measured[::4, 1] = np.nan  # not every network was measured
    new = CGSurrogate(space="nb201", objectives=("accuracy", "latency:my_accelerator"), epochs=20).fit(archs[:40], measured)
    mean, std = new.predict(archs[40:], return_std=True)
    assert mean.shape == std.shape == (80, 2) and np.isnan(std[:, 1]).all() and (std[y[40:] != 10.0, 0] > 0).all()
    assert srcc(mean[:, 1], eyeriss[40:]) > 0.7
    with pytest.raises(ValueError, match="objective"):
        CGSurrogate(space="nb201", objectives=("accuracy", "speed")).predict(archs[:2])


@pytest.mark.slow
def test_ten_labels_keep_the_pretrained_ranking_through_the_blend(nb201):
    """Fine-tuning every layer on 10 NB-201 labels forgets much of what ``nb101`` ranks zero-shot;
    the default fit averages it with the pretrained ranking blended on the same labels. Over three
    draws of 10 labels, that ranks the other 110 networks better than the fine-tuned network alone,
    and no worse than zero-shot."""
    archs, y = nb201
    settings = dict(space="nb201", checkpoint="nb101", epochs=200, recalibrate=False)
    ranks = {"zero-shot": [], "alone": [], "blended": []}
    for draw in range(3):
        labelled = np.isin(np.arange(len(y)), np.random.default_rng(draw).choice(len(y), 10, replace=False))
        support, query = [a for a, m in zip(archs, labelled) if m], [a for a, m in zip(archs, labelled) if not m]
        blended = CGSurrogate(**settings).fit(support, y[labelled])
        assert blended.predictor_.pretrained_blend is not None
        for name, surrogate in {"zero-shot": CGSurrogate(**settings), "blended": blended,
                                "alone": CGSurrogate(**settings, blend=False).fit(support, y[labelled])}.items():
            ranks[name].append(srcc(surrogate.predict(query), y[~labelled]))
    mean = {name: np.mean(r) for name, r in ranks.items()}
    assert mean["blended"] > mean["alone"] + 0.02, ranks
    assert mean["blended"] > mean["zero-shot"] - 0.01, ranks
