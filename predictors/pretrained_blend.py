"""What a fine-tuned predictor keeps of the pretrained one: its zero-shot ranking, blended few-shot
on the fine-tuning labels (:class:`predictors.few_shot.FewShotBlend`). The fine-tuned predictor
averages its own prediction with this blend.

Fine-tuning every layer on a few labels forgets rankings that transfer: from ``nb101``, 10 / 20
NB-201 labels fine-tuned rank the rest at 0.771 / 0.833, while zero-shot ranks it at 0.857. The
blend's weights, fitted by leave-one-out on the same labels, keep the zero-shot ranking where it
holds and give way to ridges on the embedding where it does not (NB-301, where zero-shot ranks
at 0.41). Averaged over NB-201 and NB-301 at 10 / 20 / 50 labels, 5 draws each, the average of
the two ranks the rest at 0.809 against fine-tuning's 0.787 (the z-score ``nb101``: 0.803 against
0.795); it gains on NB-201 at every count and loses 0.00-0.04 on NB-301
(``experiments/finetune_blend.py``).
"""
from __future__ import annotations

import numpy as np
import torch

from .few_shot import FewShotBlend
from .model import PerformancePredictor, input_independent


@torch.no_grad()
def zero_shot_inputs(model: PerformancePredictor, batch, h: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The blend's inputs for ``batch``: ``model``'s predicted label as a column, and its embedding
    (``h``, when already computed)."""
    h = model.embed(batch) if h is None else h
    label = model.transform.inverse(model.score_with_spread(batch, h)[0], batch.macs)
    return label.double().numpy()[:, None], h.double().numpy()


class PretrainedBlend:
    """The pretrained ``model`` and a :class:`FewShotBlend` fitted on its zero-shot columns and
    embeddings of the labelled networks. Those inputs and the blend's leave-one-out predictions
    are kept, so a saved predictor refits the same blend in one fit per candidate."""

    def __init__(self, model: PerformancePredictor, columns: np.ndarray, embeddings: np.ndarray, labels: np.ndarray,
                 loo: dict | None = None):
        self.model = model.eval()
        self.columns, self.embeddings, self.labels = columns, embeddings, np.asarray(labels, dtype=np.float64)
        self.few_shot = FewShotBlend().fit(columns, embeddings, self.labels, loo)

    @classmethod
    def from_labels(cls, model: PerformancePredictor, batch, labels) -> "PretrainedBlend":
        """The blend of ``model``'s zero-shot ranking fitted on ``batch``'s networks and their ``labels``."""
        return cls(model, *zero_shot_inputs(model, batch), np.asarray(labels))

    def predict(self, batch, h: torch.Tensor | None = None) -> np.ndarray:
        """The blend's predicted labels for ``batch`` (``h``: the pretrained network's embedding of it,
        when already computed)."""
        return self.few_shot.predict(*zero_shot_inputs(self.model, batch, h))

    def average(self, label: torch.Tensor, batch, h: torch.Tensor | None = None) -> torch.Tensor:
        """The fine-tuned network's ``label`` for ``batch`` averaged with the blend's; a network whose
        output ignores its input keeps its chance level."""
        blended = torch.as_tensor(self.predict(batch, h), dtype=label.dtype)
        return torch.where(input_independent(batch)[0], label, (label + blended) / 2)

    def to_state(self, with_weights: bool = True) -> dict:
        """``with_weights=False``: the network's weights are saved elsewhere (as the latency heads'
        embedding network, which a fine-tune of a latency checkpoint shares)."""
        return {"state_dict": self.model.state_dict() if with_weights else None, "columns": self.columns,
                "embeddings": self.embeddings, "labels": self.labels, "loo": self.few_shot.loo_}

    @classmethod
    def from_state(cls, state: dict, hparams: dict, shared: PerformancePredictor | None = None) -> "PretrainedBlend":
        """``shared``: the network to use when the state holds no weights."""
        model = shared
        if state["state_dict"] is not None:
            model = PerformancePredictor(**hparams, lean=True)
            model.load_state_dict(state["state_dict"], strict=False)
        return cls(model, state["columns"], state["embeddings"], state["labels"], state.get("loo"))
