"""The Python API: ``Predictor.from_pretrained(name).predict(models)``.

A checkpoint file (``torch.save`` of a dict, a few hundred KB) holds the model's constructor
arguments and weights (label-transform statistics included), an uncertainty calibration, an
out-of-distribution threshold, the feature/vocabulary versions it was trained with, and metadata
(training command, seed, data, metrics). Named checkpoints ship in ``predictors/checkpoints``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from graph_encoders.cg import ComputationGraph
from graph_encoders.features import FEATURE_VERSION
from graph_encoders.vocabulary import VOCABULARY_VERSION

from .model import PerformancePredictor, input_independent

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
# 2: may hold a pretrained blend, which a reader of format 1 would silently ignore
CHECKPOINT_FORMAT = 2


@dataclass
class Prediction:
    """One network's prediction. ``score`` ranks (higher is better, comparable within one call);
    ``accuracy`` is on the checkpoint's label scale (percent), ``std`` its calibrated one-sigma
    uncertainty; ``ood`` flags a network far from everything the checkpoint was trained on.
    ``unknown_ops`` are operators the parser does not know (judged as category ``other``);
    ``folded_nodes`` counts ONNX nodes left out of the graph (products with zero, unused outputs);
    ``constant_output`` marks a network whose output does not depend on its input: its accuracy is
    stated as chance level (100 / classes), not predicted."""

    path: str
    score: float
    accuracy: float
    std: float
    ood: bool
    ood_distance: float
    flops: int
    params: int
    latency_ms: dict[str, float] = field(default_factory=dict)  # only the devices asked for
    unknown_ops: list[str] = field(default_factory=list)
    folded_nodes: int = 0
    constant_output: bool = False

    def to_dict(self) -> dict:
        row = asdict(self)
        if not self.latency_ms:
            del row["latency_ms"]
        return row


def checkpoint_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".ckpt" or path.exists():
        return path
    named = CHECKPOINT_DIR / f"{name_or_path}.ckpt"
    if not named.exists():
        known = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.ckpt"))
        raise FileNotFoundError(f"{name_or_path}: no such checkpoint file or name (shipped: {', '.join(known) or 'none'})")
    return named


def available_checkpoints() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.ckpt"))


class Predictor:
    """A trained predictor, ready for inference (no torch-geometric import on the default path)."""

    def __init__(self, model: PerformancePredictor, calibration: dict, ood: dict, metadata: dict, hparams: dict,
                 latency=None, latency_model: PerformancePredictor | None = None, size_prior=None,
                 pretrained_blend=None):
        self.model = model.eval()
        self.size_prior = size_prior  # predictors.size_prior.SizePrior, or None
        # a fine-tuned predictor's predictions average with this (predictors.pretrained_blend), or None
        self.pretrained_blend = pretrained_blend
        self.calibration, self.ood, self.metadata, self.hparams = calibration, ood, metadata, hparams
        self.latency = latency  # predictors.latency.LatencyHeads, or None when not trained for latency
        # the model whose embedding the latency heads were trained on: fine-tuning the encoder for
        # accuracy must not move the latency heads' inputs
        self.latency_model = (latency_model or model).eval()

    @property
    def latency_devices(self) -> list[str]:
        return list(self.latency.devices) if self.latency is not None else []

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default") -> "Predictor":
        path = checkpoint_path(name_or_path)
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("format") not in (1, CHECKPOINT_FORMAT):
            raise ValueError(f"{path}: checkpoint format {state.get('format')} is not 1 or {CHECKPOINT_FORMAT}")
        if state["feature_version"] != FEATURE_VERSION or state["vocabulary_version"] != VOCABULARY_VERSION:
            raise ValueError(f"{path}: trained with features v{state['feature_version']} / vocabulary "
                             f"v{state['vocabulary_version']}, this package has v{FEATURE_VERSION} / v{VOCABULARY_VERSION}")
        model = PerformancePredictor(**state["hparams"], lean=True)
        model.load_state_dict(state["state_dict"], strict=False)
        latency, latency_model = None, None
        if state.get("latency") is not None:
            from .latency import LatencyHeads

            latency = LatencyHeads.from_state(state["latency"])
            if state["latency"].get("embedding_state_dict") is not None:
                latency_model = PerformancePredictor(**state["hparams"], lean=True)
                latency_model.load_state_dict(state["latency"]["embedding_state_dict"], strict=False)
        size_prior = None
        if state.get("size_prior") is not None:
            from .size_prior import SizePrior

            size_prior = SizePrior.from_state(state["size_prior"])
        pretrained_blend = None
        if state.get("pretrained_blend") is not None:
            from .pretrained_blend import PretrainedBlend

            pretrained_blend = PretrainedBlend.from_state(state["pretrained_blend"], state["hparams"], latency_model)
        return cls(model, state["calibration"], state["ood"], state["metadata"], state["hparams"], latency, latency_model,
                   size_prior, pretrained_blend)

    def save(self, path: str | Path) -> None:
        state_dict = {k: v for k, v in self.model.state_dict().items()}
        torch.save({
            "format": CHECKPOINT_FORMAT if self.pretrained_blend is not None else 1,
            "feature_version": FEATURE_VERSION, "vocabulary_version": VOCABULARY_VERSION,
            "hparams": self.hparams, "state_dict": state_dict, "calibration": self.calibration, "ood": self.ood,
            "metadata": self.metadata, "latency": self._latency_state(),
            "size_prior": self.size_prior.to_state() if self.size_prior is not None else None,
            "pretrained_blend": self._blend_state(),
        }, path)

    def _blend_state(self) -> dict | None:
        if self.pretrained_blend is None:
            return None
        # a fine-tune of a latency checkpoint: the blend's network is the latency heads' embedding
        # network, which _latency_state saves (a separate one)
        separate = self.latency is not None and self.latency_model is not self.model
        shared = separate and self.pretrained_blend.model is self.latency_model
        return self.pretrained_blend.to_state(with_weights=not shared)

    def _latency_state(self) -> dict | None:
        if self.latency is None:
            return None
        separate = self.latency_model is not self.model
        return {**self.latency.to_state(), "embedding_state_dict": self.latency_model.state_dict() if separate else None}

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def to_graphs(inputs: Iterable[Any], example_input: Any = None) -> list[ComputationGraph]:
        """Paths, bytes, ``onnx.ModelProto``s, ``nn.Module``s (with ``example_input``) or CGs -> CGs."""
        from graph_encoders import onnx_to_cg

        return [x if isinstance(x, ComputationGraph) else onnx_to_cg(x, example_input) for x in inputs]

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _forward(self, graphs: Sequence[ComputationGraph], batch_size: int = 512, devices: Sequence[str] = ()):
        from graph_encoders.lean import collate, node_budget_batches

        outs = {"score": [], "label": [], "spread": [], "distance": [], "latency": [], "constant": []}
        for chunk in node_budget_batches(graphs, batch_size):
            batch = collate(chunk)
            h, h_latency = self.model.embed(batch), None
            if devices:
                from .latency import cost_profile

                h_latency = h if self.latency_model is self.model else self.latency_model.embed(batch)
                outs["latency"].append(self.latency.predict_ms(torch.cat([h_latency, cost_profile(batch)], 1), list(devices)))
            score, spread = self.model.score_with_spread(batch, h)
            label, constant = self.model.transform.inverse(score, batch.macs), input_independent(batch)[0]
            if self.pretrained_blend is not None:  # the score follows the averaged label
                shared = self.pretrained_blend.model is self.latency_model  # then h_latency is its embedding
                label = self.pretrained_blend.average(label, batch, h_latency if shared else None)
                score = self.model.transform(label, batch.macs)
            outs["score"].append(self.model.transform.ranking_score(score, batch.macs))
            outs["label"].append(label)
            outs["spread"].append(spread)
            outs["constant"].append(constant)
            outs["distance"].append(torch.cdist(h, torch.as_tensor(self.ood["centers"], dtype=h.dtype)).min(1).values)
        return {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in outs.items()}

    def add_latency_device(self, name: str, inputs: Sequence[Any], latency_ms: Sequence[float],
                           example_input: Any = None) -> "Predictor":
        """A new predictor that also predicts latency on device ``name``, from 10-20 networks measured
        on it (this one is unchanged). Needs a checkpoint with latency heads."""
        import copy

        from graph_encoders.lean import collate

        from .latency import latency_inputs

        if self.latency is None:
            raise ValueError("this checkpoint has no latency heads to extend (train them with predictors.latency_export)")
        graphs = self.to_graphs(inputs, example_input)
        if len(graphs) != len(latency_ms):
            raise ValueError(f"{len(graphs)} networks but {len(latency_ms)} latencies")
        with torch.no_grad():
            features = latency_inputs(self.latency_model, collate(graphs))
        heads = copy.deepcopy(self.latency).add_device(name, features, latency_ms)
        metadata = dict(self.metadata, latency_devices_added=[*self.metadata.get("latency_devices_added", []),
                                                              f"{name} ({len(graphs)} measured networks)"])
        return Predictor(self.model, self.calibration, self.ood, metadata, self.hparams, heads, self.latency_model,
                         self.size_prior, self.pretrained_blend)

    def predict(self, inputs: Iterable[Any], example_input: Any = None, batch_size: int = 512,
                latency_devices: Sequence[str] = (), size_prior: bool = False) -> list[Prediction]:
        """Predictions for every input, in order; ``latency_devices`` adds predicted latencies (ms)
        on those devices (names from :attr:`latency_devices`). ``size_prior`` averages the accuracy
        with the checkpoint's FLOPs prior (:mod:`predictors.size_prior`): better zero-shot rankings
        of families a z-score checkpoint never saw, worse ones in domain; near neutral for a
        size-label checkpoint such as ``nb101``, which predicts with that prior inside."""
        from graph_encoders.lean import graph_arrays

        devices = list(latency_devices)
        for device in devices:
            if device not in self.latency_devices:
                known = ", ".join(self.latency_devices) or "none: this checkpoint has no latency heads"
                raise KeyError(f"unknown latency device {device!r}; this checkpoint knows: {known}")
        if size_prior and self.size_prior is None:
            raise ValueError("this checkpoint has no size prior (add one with python -m predictors.size_prior)")
        graphs = self.to_graphs(inputs, example_input)
        out = self._forward(graphs, batch_size, devices)
        latency = out["latency"] if devices else np.zeros((len(graphs), 0))
        arrays = [graph_arrays(g) for g in graphs]  # cached per CG: search loops score the same graphs again
        macs, params = np.array([a[3:5] for a in arrays], dtype=float).reshape(-1, 2).T
        constant = out["constant"].astype(bool)
        if size_prior:  # the two-member ensemble on the accuracy scale; the score follows it
            out["label"] = np.where(constant, out["label"], (out["label"] + self.size_prior.predict(macs)) / 2)
            with torch.no_grad():
                label, macs_t = torch.as_tensor(out["label"]), torch.as_tensor(macs)
                out["score"] = self.model.transform.ranking_score(self.model.transform(label, macs_t), macs_t).numpy()
        scale = np.log10(macs / 1e9 + 1) + 1 if self.model.transform.kind == "flops" else np.ones_like(macs)
        # std on the transformed scale = sqrt(a * head disagreement + b), fitted on held-out data
        z_std = np.sqrt(self.calibration["a"] * out["spread"] + self.calibration["b"])
        std = z_std * float(self.model.transform.std) * scale
        std[constant] = 0.0  # chance level is stated, not predicted
        return [
            Prediction(path=g.source, score=float(s), accuracy=float(a), std=float(sd), ood=bool(d > self.ood["threshold"]),
                       ood_distance=float(d / self.ood["threshold"]), flops=int(f), params=int(n),
                       latency_ms={device: float(ms) for device, ms in zip(devices, row)},
                       unknown_ops=sorted(set(g.unknown_ops)), folded_nodes=g.folded_nodes, constant_output=bool(c))
            for g, s, a, sd, d, f, n, row, c in zip(graphs, out["score"], out["label"], std, out["distance"], macs, params,
                                                    latency, constant)
        ]

    def embed(self, inputs: Iterable[Any], example_input: Any = None) -> np.ndarray:
        from graph_encoders.lean import collate, node_budget_batches

        graphs = self.to_graphs(inputs, example_input)
        with torch.no_grad():
            parts = [self.model.embed(collate(chunk)) for chunk in node_budget_batches(graphs)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, self.model.embedding_dim), np.float32)

    def finetune(self, inputs: Sequence[Any], labels: Sequence[float], epochs: int = 200, trainable: str = "all",
                 lr: float | None = None, seed: int = 0, source: str = "", example_input: Any = None,
                 progress: bool = False, recalibrate: bool = True, blend: bool = True) -> "Predictor":
        """A new predictor adapted to a family of 10-100 labelled networks (this one is unchanged).

        The label transform is refitted on the family's labels (AIO-P's z-scoring with target
        samples); it trains ``epochs`` epochs of minibatches of 64 (no length is picked from the
        labels: ``experiments/results/finetune_selection*.md``); ``trainable`` is ``all`` (every
        layer, at ``lr`` 2e-3 by default), ``heads`` or ``top`` (heads + the last GNN layer; ``lr``
        1e-2 by default). With ``blend`` (the default) the new predictor averages the fine-tuned
        network's prediction with this one's zero-shot ranking blended few-shot on the same labels
        (:mod:`predictors.pretrained_blend`; of a predictor that is itself blended, its network's
        ranking): fine-tuning alone forgets rankings that transfer. From ``nb101``, over 5 draws,
        NB-201's rest ranks at 0.856 / 0.884 / 0.920 with 10 / 20 / 50 labels (fine-tuned alone
        0.771 / 0.833 / 0.902, zero-shot 0.857) and NB-301's at 0.616 / 0.755 / 0.822 (alone 0.621 /
        0.756 / 0.840: ``experiments/results/finetune_blend.md``); it costs a second forward pass per
        prediction. The new predictor has no size prior (the base's speaks the pretraining labels'
        scale). Uncertainty is recalibrated on 5-fold cross-validated residuals of what the new
        predictor predicts (blended or not; ``recalibrate=False`` keeps the base calibration and
        fits once: for search loops that refit often), and the family's embeddings join the
        in-distribution reference set.
        """
        from .finetuning import finetune_predictor

        return finetune_predictor(self, self.to_graphs(inputs, example_input), np.asarray(labels, dtype=float),
                                  epochs, trainable, lr, seed, source, progress, recalibrate, blend)

    def describe(self) -> str:
        meta = self.metadata
        return (f"trained on {', '.join(meta.get('trained_on', []))} ({meta.get('label', 'accuracy')}); "
                f"recipe: {meta.get('recipe', '?')}")


def calibrate(spread: np.ndarray, residual_z: np.ndarray) -> dict:
    """Fit sigma^2 = a * spread + b (a, b >= 0) to squared held-out residuals, then rescale so the
    standardised residuals have unit variance: a calibrated one-sigma."""
    target = residual_z ** 2
    design = np.stack([spread, np.ones_like(spread)], 1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    a, b = max(float(coef[0]), 0.0), max(float(coef[1]), 1e-6)
    variance = a * spread + b
    factor = float(np.mean(target / variance))
    return {"a": a * factor, "b": b * factor, "coverage_1sigma": float(np.mean(np.abs(residual_z) <= np.sqrt(variance * factor)))}


def ood_threshold(embeddings: np.ndarray, centers: np.ndarray, quantile: float = 0.99) -> dict:
    """Out-of-distribution: nearest-centroid distance above the training graphs' 99th percentile."""
    distances = np.sqrt(((embeddings[:, None, :] - centers[None]) ** 2).sum(-1)).min(1)
    return {"centers": centers.astype(np.float32), "threshold": float(np.quantile(distances, quantile)),
            "quantile": quantile}
