"""The surrogate a NAS loop calls: scikit-learn conventions, and NASLib's predictor interface.

    surrogate = CGSurrogate(space="nb201", checkpoint="nb101").fit(archs, accuracies)
    mean, std = surrogate.predict(candidates, return_std=True)

``X`` holds architectures in the space's own encoding (NB-201 strings, NB-101 (matrix, ops), ...),
or ONNX paths / ``ComputationGraph``s with ``space=None``. Each architecture's CG is built once
and memoised, so repeated queries cost only the GNN forward pass (thousands per second).
``fit`` fine-tunes the pretrained predictor on the labelled architectures (at least 5); before
any ``fit`` the pretrained checkpoint answers zero-shot.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class CGSurrogate(RegressorMixin, BaseEstimator):
    """Args:
        space: a registered search space name (``bench_data.registry``), or None for ONNX/CG inputs.
        checkpoint: pretrained checkpoint name or path.
        epochs, trainable, seed: fine-tuning settings used by :meth:`fit`.
    """

    def __init__(self, space: str | None = None, checkpoint: str = "default", epochs: int = 100,
                 trainable: str = "top", seed: int = 0):
        self.space = space
        self.checkpoint = checkpoint
        self.epochs = epochs
        self.trainable = trainable
        self.seed = seed

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
    def fit(self, X: Sequence[Any], y) -> "CGSurrogate":
        y = np.asarray(y, dtype=float)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} architectures but y has {len(y)} labels")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite labels")
        self.predictor_ = self._base().finetune(self._graphs(X), y, epochs=self.epochs, trainable=self.trainable,
                                                seed=self.seed, source=f"{len(y)} labels via CGSurrogate.fit")
        self.n_train_ = len(y)
        return self

    def predict(self, X: Sequence[Any], return_std: bool = False):
        predictor = getattr(self, "predictor_", None) or self._base()
        predictions = predictor.predict(self._graphs(X))
        mean = np.array([p.accuracy for p in predictions])
        if return_std:
            return mean, np.array([p.std for p in predictions])
        return mean


class NASLibPredictor:
    """NASLib's predictor interface (``fit(xtrain, ytrain)``, ``query(xtest)``) around a surrogate."""

    def __init__(self, space: str, checkpoint: str = "default", **kwargs):
        self.surrogate = CGSurrogate(space=space, checkpoint=checkpoint, **kwargs)

    def fit(self, xtrain, ytrain, train_info=None, **kwargs):
        self.surrogate.fit(list(xtrain), ytrain)
        return self

    def query(self, xtest, info=None, eval_batch_size=None):
        return self.surrogate.predict(list(xtest))
