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
from .metrics import srcc

if TYPE_CHECKING:
    from .api import Predictor

FOLDS = 5


TRAINABLE = ("heads", "top", "all")


def default_lr(trainable: str) -> float:
    """Every layer moving at 1e-2 forgets the pretraining (NB-201, 50 labels: SRCC 0.81 vs 0.90 at 2e-3)."""
    return 2e-3 if trainable == "all" else 1e-2


def _trainable_parameters(model, trainable: str) -> list[torch.nn.Parameter]:
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    params = list(model.head.parameters())
    if trainable == "all":
        params += list(model.encoder.parameters())
    elif trainable == "top":
        encoder = model.encoder
        params += [p for part in (encoder.forward_convs, encoder.backward_convs, encoder.norms) for p in part[-1].parameters()]
    return [p for p in params if p.dtype.is_floating_point]


def _fit(model, batch, y, epochs: int, trainable: str, lr: float, seed: int, progress: bool = False,
         on_epoch=None):
    """Full-batch training; ``on_epoch(e, model)`` is called before training (e = 0) and after each epoch."""
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
    if on_epoch is not None:
        on_epoch(0, model.eval())
    for epoch in steps:
        model.train()
        optimizer.zero_grad()
        pred = model(batch)
        loss = F.mse_loss(pred, target) + 0.5 * pairwise_ranking_loss(pred, target)
        loss.backward()
        optimizer.step()
        if on_epoch is not None:
            on_epoch(epoch + 1, model.eval())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def _match_scale(model, batch, y: torch.Tensor) -> None:
    """Least-squares affine map of the predictions onto the family's labels, folded into the label
    transform (a positive slope keeps the ranking): a short or zero-epoch fine-tune still speaks the
    family's label scale."""
    z = model(batch)
    target = model.transform(y, batch.macs)
    slope = torch.cov(torch.stack([z, target]))[0, 1] / z.var().clamp_min(1e-12)
    if slope <= 0:
        return
    intercept = target.mean() - slope * z.mean()
    transform = model.transform
    transform.mean.add_(intercept * transform.std)
    transform.std.mul_(slope)


def finetune_predictor(base: "Predictor", graphs, labels: np.ndarray, epochs: int, trainable: str, lr: float | None,
                       seed: int, source: str, progress: bool = False, recalibrate: bool = True) -> "Predictor":
    from .api import Predictor

    lr = default_lr(trainable) if lr is None else lr
    if len(graphs) != len(labels):
        raise ValueError(f"{len(graphs)} networks but {len(labels)} labels")
    if len(graphs) < 5:
        raise ValueError(f"fine-tuning needs at least 5 labelled networks, got {len(graphs)}")
    y = torch.as_tensor(labels, dtype=torch.float32)
    # Cross-validation: each fold's model never saw its test networks. It picks how long to train
    # (0 epochs, i.e. the pretrained ranking, included: fine-tuning must earn its place) and gives
    # the residuals that calibrate the uncertainty.
    checkpoints = sorted({0, *[e for e in (10, 25, 50, 100, 200) if e < epochs], epochs}) if recalibrate else [epochs]
    outputs = {e: (np.zeros(len(graphs)), np.zeros(len(graphs)), np.zeros(len(graphs))) for e in checkpoints}
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(len(graphs)), min(FOLDS, len(graphs))) if recalibrate else []
    for fold in folds:
        train_idx = np.setdiff1d(np.arange(len(graphs)), fold)
        test = collate([graphs[i] for i in fold])

        def record(epoch, model, fold=fold, test=test):
            if epoch not in outputs:
                return
            with torch.no_grad():
                z, spread = model.score_with_spread(test, model.embed(test))
                z_true = model.transform(y[fold], test.macs)
                outputs[epoch][0][fold] = z.numpy()
                outputs[epoch][1][fold] = (z - z_true).numpy()
                outputs[epoch][2][fold] = spread.numpy()

        _fit(copy.deepcopy(base.model), collate([graphs[i] for i in train_idx]), y[train_idx], epochs, trainable, lr,
             seed, on_epoch=record)
    if recalibrate:
        scores = {e: srcc(outputs[e][0], labels) for e in checkpoints}
        chosen = max(checkpoints, key=lambda e: (round(scores[e], 3), e))
    else:
        chosen, scores = epochs, {}
    batch = collate(graphs)
    model = _fit(copy.deepcopy(base.model), batch, y, chosen, trainable, lr, seed, progress)
    _match_scale(model, batch, y)
    with torch.no_grad():
        family = model.embed(batch).numpy()
    centers = np.concatenate([np.asarray(base.ood["centers"]), family])
    ood = {**ood_threshold(family, centers), "threshold": float(base.ood["threshold"])}
    metadata = {**base.metadata, "finetuned_from": base.metadata.get("name", ""), "finetuned_on": source,
                "finetune_labels": len(graphs), "finetune_epochs": chosen, "finetune_cv_srcc": scores,
                "finetune_trainable": trainable, "finetune_lr": lr,
                "finetune_seed": seed, "label": "the fine-tuning family's labels"}
    calibration = calibrate(outputs[chosen][2], outputs[chosen][1]) if recalibrate else dict(base.calibration)
    return Predictor(model, calibration, ood, metadata, base.hparams, base.latency, base.latency_model)
