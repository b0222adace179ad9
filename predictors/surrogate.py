"""The surrogate a NAS loop calls: scikit-learn conventions, and NASLib's predictor interface.

    surrogate = CGSurrogate(space="nb201", checkpoint="nb101").fit(archs, accuracies)
    mean, std = surrogate.predict(candidates, return_std=True)

``X`` holds architectures in the space's own encoding (NB-201 strings, NB-101 (matrix, ops), ...),
or ONNX paths / ``ComputationGraph``s with ``space=None``. Each architecture's CG is built once
and memoised, so repeated queries cost only the GNN forward pass (thousands per second).
``fit`` fine-tunes the pretrained predictor on the labelled architectures (at least 5) and, by
default, averages it with the checkpoint's zero-shot ranking blended on the same labels
(``blend``); before any ``fit`` the pretrained checkpoint answers zero-shot.

Several objectives at once (multi-objective search): ``objectives=("accuracy", "latency:pixel3")``
makes ``predict`` return an (n, 2) array and ``fit`` take an (n, 2) ``y``. A latency device the
checkpoint knows keeps its trained read-out; a device it does not know is learnt in ``fit`` from the
measured latencies (NaN where a network was not measured; at least 3 measurements).

    surrogate = CGSurrogate("nb201", objectives=("accuracy", "latency:my_phone")).fit(archs, y)
    accuracy_and_ms = surrogate.predict(candidates)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class CGSurrogate(RegressorMixin, BaseEstimator):
    """Args:
        space: a registered search space name (``bench_data.registry``), or None for ONNX/CG inputs.
        checkpoint: pretrained checkpoint name or path.
        epochs, trainable, seed: fine-tuning settings used by :meth:`fit` (``trainable``: ``all``, the
            default of :meth:`predictors.api.Predictor.finetune`; ``top`` or ``heads`` refit faster).
        objectives: ``"accuracy"`` and/or ``"latency:<device>"``, the columns of ``y`` and of predictions.
        recalibrate: refit the uncertainty by cross-validation in :meth:`fit` (False: faster refits
            for search loops, keeping the checkpoint's calibration).
        blend: average the fine-tuned network with the checkpoint's zero-shot ranking blended on the
            same labels (:meth:`predictors.api.Predictor.finetune`; False: the fine-tuned network alone,
            one forward pass per prediction).
    """

    def __init__(self, space: str | None = None, checkpoint: str = "default", epochs: int = 100,
                 trainable: str = "all", seed: int = 0, objectives: tuple = ("accuracy",), recalibrate: bool = True,
                 blend: bool = True):
        self.space = space
        self.checkpoint = checkpoint
        self.epochs = epochs
        self.trainable = trainable
        self.seed = seed
        self.objectives = objectives
        self.recalibrate = recalibrate
        self.blend = blend

    # ------------------------------------------------------------------ helpers
    def _base(self):
        if not hasattr(self, "base_predictor_"):
            from .api import Predictor

            self.base_predictor_ = Predictor.from_pretrained(self.checkpoint)
            self.graph_cache_ = {}
        return self.base_predictor_

    def _graphs(self, X: Sequence[Any]):
        self._base()
        if self.space is None:
            from .api import Predictor

            return Predictor.to_graphs(X)
        from bench_data import registry

        if not hasattr(self, "space_"):
            self.space_ = registry.get_space(self.space)
        graphs = []
        for arch in X:
            key = repr(arch)
            if key not in self.graph_cache_:
                self.graph_cache_[key] = self.space_.to_cg(arch)
            graphs.append(self.graph_cache_[key])
        return graphs

    # ------------------------------------------------------------------ estimator API
    def _devices(self) -> list[str]:
        devices = []
        for objective in self.objectives:
            kind, _, device = objective.partition(":")
            if objective != "accuracy" and (kind != "latency" or not device):
                raise ValueError(f"objective {objective!r}: expected 'accuracy' or 'latency:<device>'")
            if kind == "latency":
                devices.append(device)
        return devices

    def fit(self, X: Sequence[Any], y) -> "CGSurrogate":
        y = np.asarray(y, dtype=float)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} architectures but y has {len(y)} labels")
        y = y.reshape(len(y), -1)
        if y.shape[1] != len(self.objectives):
            raise ValueError(f"y has {y.shape[1]} columns for {len(self.objectives)} objectives {list(self.objectives)}")
        graphs = self._graphs(X)
        predictor = self._base()
        for column, objective in zip(y.T, self.objectives):
            if objective == "accuracy":
                if not np.all(np.isfinite(column)):
                    raise ValueError("y contains NaN or infinite accuracy labels")
                predictor = predictor.finetune(graphs, column, epochs=self.epochs, trainable=self.trainable,
                                               seed=self.seed, source=f"{len(column)} labels via CGSurrogate.fit",
                                               recalibrate=self.recalibrate, blend=self.blend)
            elif (device := objective.partition(":")[2]) not in self._base().latency_devices:
                measured = np.flatnonzero(np.isfinite(column))
                predictor = predictor.add_latency_device(device, [graphs[i] for i in measured], column[measured])
        self.predictor_ = predictor
        self.n_train_ = len(y)
        return self

    def predict(self, X: Sequence[Any], return_std: bool = False):
        """(n,) for one objective, (n, objectives) for several; ``return_std`` adds the calibrated
        accuracy std (NaN for latency objectives, which carry no calibrated uncertainty)."""
        predictor = getattr(self, "predictor_", None) or self._base()
        predictions = predictor.predict(self._graphs(X), latency_devices=self._devices())
        columns, stds = [], []
        for objective in self.objectives:
            if objective == "accuracy":
                columns.append([p.accuracy for p in predictions])
                stds.append([p.std for p in predictions])
            else:
                device = objective.partition(":")[2]
                columns.append([p.latency_ms[device] for p in predictions])
                stds.append([np.nan] * len(predictions))
        mean, std = np.array(columns).T, np.array(stds).T
        if len(self.objectives) == 1:
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean


class NASLibPredictor:
    """NASLib's predictor interface (``fit(xtrain, ytrain)``, ``query(xtest)``) around a surrogate."""

    def __init__(self, space: str, checkpoint: str = "default", **kwargs):
        self.surrogate = CGSurrogate(space=space, checkpoint=checkpoint, **kwargs)

    def fit(self, xtrain, ytrain, train_info=None, **kwargs):
        self.surrogate.fit(list(xtrain), ytrain)
        return self

    def query(self, xtest, info=None, eval_batch_size=None):
        return self.surrogate.predict(list(xtest))
