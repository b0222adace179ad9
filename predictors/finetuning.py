"""Fine-tuning a shipped predictor on a user's own family of labelled networks (plain torch: a
few hundred full-batch steps on at most a few hundred graphs need no training framework)."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from graph_encoders.lean import collate

from .api import calibrate, ood_threshold
from .losses import pairwise_ranking_loss

if TYPE_CHECKING:
    from .api import Predictor

FOLDS = 5


def _trainable_parameters(model, trainable: str) -> list[torch.nn.Parameter]:
    if trainable not in ("heads", "top"):
        raise ValueError(f"trainable must be 'heads' or 'top', got {trainable!r}")
    params = list(model.head.parameters())
    if trainable == "top":
        encoder = model.encoder
        params += [p for part in (encoder.forward_convs, encoder.backward_convs, encoder.norms) for p in part[-1].parameters()]
    return [p for p in params if p.dtype.is_floating_point]


def _fit(model, batch, y, epochs: int, trainable: str, lr: float, seed: int, progress: bool = False):
    torch.manual_seed(seed)
    model.transform.fit(y, batch.macs)
    target = model.transform(y, batch.macs)
    params = _trainable_parameters(model, trainable)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(params, lr=lr)
    steps = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="fine-tuning", unit="epoch")
    model.train()
    for _ in steps:
        optimizer.zero_grad()
        pred = model(batch)
        loss = F.mse_loss(pred, target) + 0.5 * pairwise_ranking_loss(pred, target)
        loss.backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def finetune_predictor(base: "Predictor", graphs, labels: np.ndarray, epochs: int, trainable: str, lr: float,
                       seed: int, source: str, progress: bool = False, recalibrate: bool = True) -> "Predictor":
    from .api import Predictor

    if len(graphs) != len(labels):
        raise ValueError(f"{len(graphs)} networks but {len(labels)} labels")
    if len(graphs) < 5:
        raise ValueError(f"fine-tuning needs at least 5 labelled networks, got {len(graphs)}")
    y = torch.as_tensor(labels, dtype=torch.float32)
    # Calibration from cross-validated residuals: each fold's model never saw its test networks.
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(len(graphs)), min(FOLDS, len(graphs))) if recalibrate else []
    residuals, spreads = np.zeros(len(graphs)), np.zeros(len(graphs))
    for fold in folds:
        train_idx = np.setdiff1d(np.arange(len(graphs)), fold)
        model = _fit(copy.deepcopy(base.model), collate([graphs[i] for i in train_idx]), y[train_idx], epochs,
                     trainable, lr, seed)
        with torch.no_grad():
            test = collate([graphs[i] for i in fold])
            h = model.embed(test)
            per_cluster, u = model.head.per_cluster(h), model.head.memberships(h)
            z = (u * per_cluster).sum(1)
            residuals[fold] = (z - model.transform(y[fold], test.macs)).numpy()
            spreads[fold] = (u * (per_cluster - z[:, None]) ** 2).sum(1).numpy()
    batch = collate(graphs)
    model = _fit(copy.deepcopy(base.model), batch, y, epochs, trainable, lr, seed, progress)
    with torch.no_grad():
        family = model.embed(batch).numpy()
    centers = np.concatenate([np.asarray(base.ood["centers"]), family])
    ood = {**ood_threshold(family, centers), "threshold": float(base.ood["threshold"])}
    metadata = {**base.metadata, "finetuned_from": base.metadata.get("name", ""), "finetuned_on": source,
                "finetune_labels": len(graphs), "finetune_epochs": epochs, "finetune_trainable": trainable,
                "finetune_seed": seed, "label": "the fine-tuning family's labels"}
    calibration = calibrate(spreads, residuals) if recalibrate else dict(base.calibration)
    return Predictor(model, calibration, ood, metadata, base.hparams)
