"""Fine-tuning a shipped predictor on a user's own family of labelled networks (plain torch: a
few hundred steps on at most a few hundred graphs need no training framework)."""
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
from .pretrained_blend import PretrainedBlend, zero_shot_inputs

if TYPE_CHECKING:
    from .api import Predictor

FOLDS = 5
CV_EPOCHS = (10, 25, 50, 100, 200)  # the lengths cross-validation scores (up to ``epochs``), for the record
BATCH_SIZE = 64  # a family of 50 trains full-batch; one of 469 takes 8 steps an epoch, as pretraining's loop


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


def _fit(model, batch_of, y, epochs: int, trainable: str, lr: float, seed: int, progress: bool = False,
         on_epoch=None):
    """Training on shuffled minibatches of at most :data:`BATCH_SIZE` networks (``batch_of(indices)``
    batches them); ``on_epoch(e, model)`` is called before training (e = 0) and after each epoch."""
    torch.manual_seed(seed)
    n = len(y)
    everything = batch_of(np.arange(n))
    model.transform.fit(y, everything.macs, size_effect="keep")
    if on_epoch is not None:
        on_epoch(0, model.eval())  # the pretrained network on the labels' scale (a size checkpoint keeps its h)
    if epochs:  # training fits a plain z-score of the few labels (see LabelTransform.fit)
        model.transform.fit(y, everything.macs, size_effect="drop")
    target = model.transform(y, everything.macs)
    splits, shuffle = -(-n // BATCH_SIZE), torch.Generator().manual_seed(seed)
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
    for epoch in steps:
        model.train()
        for part in torch.randperm(n, generator=shuffle).tensor_split(splits) if splits > 1 else [torch.arange(n)]:
            optimizer.zero_grad()
            pred = model(everything if splits == 1 else batch_of(part.numpy()))
            loss = F.mse_loss(pred, target[part]) + 0.5 * pairwise_ranking_loss(pred, target[part])
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


def cv_lengths(epochs: int) -> list[int]:
    """The training lengths :func:`cross_validate` scores: 0 (the pretrained ranking), the
    :data:`CV_EPOCHS` below ``epochs``, and ``epochs``."""
    return sorted({0, *[e for e in CV_EPOCHS if e < epochs], epochs})


def cv_folds(n: int, seed: int) -> list[np.ndarray]:
    """The folds of :func:`cross_validate` (also used by ``experiments/finetune_selection.py``)."""
    return np.array_split(np.random.default_rng(seed).permutation(n), min(FOLDS, n))


def cross_validate(model, batch_of, y: torch.Tensor, epochs: int, trainable: str, lr: float, seed: int,
                   blend_inputs: tuple[np.ndarray, np.ndarray] | None = None):
    """5-fold cross-validation of fine-tuning ``model`` on labels ``y``; ``batch_of(indices)`` batches
    those networks. Each fold's model never sees its held-out networks. It gives the out-of-fold
    residuals that calibrate the uncertainty and, for the record, how well each length (0 epochs,
    the pretrained ranking, included) ranked the held-out labels. It does not pick the length: from
    10-50 labels that pick lost more than it saved with the z-score ``nb101`` of sessions 1-13
    (over 5 draws of 10 / 20 / 50 labels on NB-201 and NB-301 the full length scored 0.797 on
    average, the pick 0.784). With today's ``nb101`` (size labels) the full length scores 0.787,
    the pick 0.784, and below 50 NB-201 labels training falls under the zero-shot ranking
    (``experiments/results/finetune_selection*.md``; the results README, session 14). With
    ``blend_inputs`` (:func:`zero_shot_inputs` of ``model`` on the labelled networks), the full length
    is also scored as the predictor predicts, under the key ``"blended"``: averaged with a
    :class:`PretrainedBlend` fitted on the fold's training labels (its residuals calibrate a blended
    predictor's uncertainty). Returns the SRCC of every
    checkpoint, and each checkpoint's out-of-fold ``score``, ``residual`` and ``spread``."""
    n = len(y)
    checkpoints = cv_lengths(epochs)
    outputs = {key: {k: np.zeros(n) for k in ("score", "residual", "spread")}
               for key in [*checkpoints, *(["blended"] if blend_inputs is not None else [])]}
    for fold in cv_folds(n, seed):
        held_out, train = batch_of(fold), np.setdiff1d(np.arange(n), fold)
        fold_blend = (PretrainedBlend(model, *(inputs[train] for inputs in blend_inputs), y[train].numpy())
                      if blend_inputs is not None else None)

        @torch.no_grad()
        def record(epoch, tuned, fold=fold, held_out=held_out, fold_blend=fold_blend):
            if epoch not in checkpoints:
                return
            z, spread = tuned.score_with_spread(held_out, tuned.embed(held_out))
            scored = {epoch: z}
            if fold_blend is not None and epoch == epochs:
                label = fold_blend.average(tuned.transform.inverse(z, held_out.macs), held_out)
                scored["blended"] = tuned.transform(label, held_out.macs)
            for key, z in scored.items():
                outputs[key]["score"][fold] = tuned.transform.ranking_score(z, held_out.macs).numpy()
                outputs[key]["spread"][fold] = spread.numpy()
                outputs[key]["residual"][fold] = (z - tuned.transform(y[fold], held_out.macs)).numpy()

        _fit(copy.deepcopy(model), lambda idx, train=train: batch_of(train[idx]), y[train], epochs, trainable, lr, seed,
             on_epoch=record)
    return {key: srcc(out["score"], y.numpy()) for key, out in outputs.items()}, outputs


def finetune_model(model, batch_of, y: torch.Tensor, epochs: int, trainable: str, lr: float, seed: int,
                   cross_validated: bool = True, progress: bool = False,
                   blend_inputs: tuple[np.ndarray, np.ndarray] | None = None):
    """A fine-tuned copy of ``model`` on labels ``y`` (``batch_of(indices)`` batches those networks),
    trained ``epochs`` epochs, its label scale matched to the family's. Returns the model and
    :func:`cross_validate`'s scores and outputs (empty with ``cross_validated=False``; ``blend_inputs``: see there)."""
    scores, outputs = (cross_validate(model, batch_of, y, epochs, trainable, lr, seed, blend_inputs) if cross_validated
                       else ({}, {}))
    tuned = _fit(copy.deepcopy(model), batch_of, y, epochs, trainable, lr, seed, progress)
    _match_scale(tuned, batch_of(np.arange(len(y))), y)
    return tuned, scores, outputs


def finetune_predictor(base: "Predictor", graphs, labels: np.ndarray, epochs: int, trainable: str, lr: float | None,
                       seed: int, source: str, progress: bool = False, recalibrate: bool = True,
                       blend: bool = True) -> "Predictor":
    from .api import Predictor

    lr = default_lr(trainable) if lr is None else lr
    if len(graphs) != len(labels):
        raise ValueError(f"{len(graphs)} networks but {len(labels)} labels")
    if len(graphs) < 5:
        raise ValueError(f"fine-tuning needs at least 5 labelled networks, got {len(graphs)}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    y, batch = torch.as_tensor(labels, dtype=torch.float32), collate(graphs)
    # the blend starts from the base's own network (a base that is itself blended gives only that)
    blend_inputs = zero_shot_inputs(base.model, batch) if blend else None
    model, scores, outputs = finetune_model(base.model, lambda idx: collate([graphs[i] for i in idx]), y, epochs,
                                            trainable, lr, seed, cross_validated=recalibrate, progress=progress,
                                            blend_inputs=blend_inputs)
    with torch.no_grad():
        family = model.embed(batch).numpy()
    pretrained_blend = PretrainedBlend(base.model, *blend_inputs, labels) if blend else None
    centers = np.concatenate([np.asarray(base.ood["centers"]), family])
    ood = {**ood_threshold(family, centers), "threshold": float(base.ood["threshold"])}
    metadata = {**base.metadata, "finetuned_from": base.metadata.get("name", ""), "finetuned_on": source,
                "finetune_labels": len(graphs), "finetune_epochs": epochs, "finetune_cv_srcc": scores,
                "finetune_trainable": trainable, "finetune_lr": lr,
                "finetune_seed": seed, "finetune_blend": pretrained_blend.few_shot.describe() if blend else None,
                "label": "the fine-tuning family's labels"}
    predicted = outputs.get("blended" if blend else epochs)  # the cross-validated residuals of what it predicts
    calibration = calibrate(predicted["spread"], predicted["residual"]) if recalibrate else dict(base.calibration)
    # no size prior: the base's was fitted on the pretraining labels' scale (the blend has a size ridge)
    return Predictor(model, calibration, ood, metadata, base.hparams, base.latency, base.latency_model, None,
                     pretrained_blend)
