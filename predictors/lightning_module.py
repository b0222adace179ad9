"""Lightning training of the predictor: pretraining, fuzzy clustering of the heads, fine-tuning.

One :class:`PredictorModule` covers the stages, chosen by configuration:

- pretraining: regression + ranking + GENNAPE's spectral contrastive loss (weights are config);
- at ``cluster_epoch`` the :class:`FuzzyClustering` step fits fuzzy c-means on the frozen training
  embeddings, fixes the head centroids, and (``freeze_encoder_after_clustering``) freezes the encoder
  so the K heads specialise on fixed embeddings, as GENNAPE does;
- fine-tuning (``init_from`` a checkpoint): ``trainable`` picks what adapts: ``all``, ``heads``,
  ``top`` (heads + the top encoder layer) or ``adapter`` (LoRA on every GNN layer's linear maps).

Validation logs SRCC between predicted and true labels (``val_srcc``): checkpoints keep the best.
``predict-train test`` reports the held-out split's ``test_srcc``, ``test_kendall`` and ``test_mae``.
"""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from .fuzzy_cmeans import FuzzyCMeans
from .losses import pairwise_ranking_loss, spectral_contrastive_loss
from .metrics import kendall_tau, srcc
from .model import PerformancePredictor

TRAINABLE = ("all", "heads", "top", "adapter")


def pretrained_state(name_or_path: str) -> dict:
    """The model weights of a Lightning training checkpoint, or of an exported predictor checkpoint
    (a shipped name such as ``nb101``, or a path)."""
    from .api import checkpoint_path

    state = torch.load(checkpoint_path(name_or_path), map_location="cpu", weights_only=False)
    if "format" in state:  # exported by predictors.export: the model's own state dict
        return state["state_dict"]
    return {k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")}


def from_pretrained_module(name_or_path: str) -> "PredictorModule":
    """A :class:`PredictorModule` holding a trained predictor: a Lightning checkpoint as it was saved,
    or an exported one (its model hyperparameters, the module's defaults for the rest)."""
    from .api import checkpoint_path

    path = checkpoint_path(name_or_path)
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "format" not in state:
        return PredictorModule.load_from_checkpoint(path, map_location="cpu")
    return PredictorModule(**state["hparams"], init_from=str(path))


class PredictorModule(L.LightningModule):
    def __init__(
        self,
        width: int = 96,
        layers: int = 4,
        conv: str = "graphconv",
        pooling: str = "mean",
        dropout: float = 0.1,
        n_clusters: int = 4,
        head_hidden: int = 64,
        fuzzifier: float = 2.0,
        learn_centers: bool = False,
        label_transform: str = "flops",
        node_sizes: str = "all",
        mse_weight: float = 1.0,
        rank_weight: float = 0.5,
        contrastive_weight: float = 0.2,
        temperature: float = 0.1,
        spectral_temperature: float = 0.1,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        cluster_epoch: int | None = None,
        freeze_encoder_after_clustering: bool = True,
        trainable: str = "all",
        lora_rank: int = 4,
        init_from: str | None = None,
        refit_transform: bool = True,
    ):
        super().__init__()
        if trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
        self.save_hyperparameters()
        self.model = PerformancePredictor(width, layers, conv, pooling, dropout, n_clusters, head_hidden, fuzzifier,
                                          learn_centers, label_transform, node_sizes=node_sizes)
        if init_from:
            self.model.load_state_dict(pretrained_state(init_from), strict=False)
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        if trainable == "adapter":
            from .adapters import add_lora

            add_lora(self.model.encoder, lora_rank)
        self._apply_trainable()

    # ------------------------------------------------------------------ what trains
    def _apply_trainable(self) -> None:
        mode = self.hparams.trainable
        if mode == "all":
            return
        for name, p in self.model.named_parameters():
            keep = name.startswith("head.")
            if mode == "top":
                last = self.hparams.layers - 1
                keep |= any(name.startswith(f"encoder.{part}.{last}.") for part in ("forward_convs", "backward_convs", "norms"))
            if mode == "adapter":
                keep |= "lora_" in name
            p.requires_grad_(keep)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.refit_transform and self.trainer.datamodule is not None:
            train = self.trainer.datamodule.train_set
            self.model.transform.fit(train.y, train.macs)

    # ------------------------------------------------------------------ steps
    def training_step(self, batch, batch_idx):
        hp = self.hparams
        y = self.model.transform(batch.y, batch.macs)
        h1 = self.model.embed(batch)
        pred = self.model.head(h1)
        losses = {"mse": F.mse_loss(pred, y)}
        if hp.rank_weight:
            losses["rank"] = pairwise_ranking_loss(pred, y)
        if hp.contrastive_weight and self.model.encoder.training and any(p.requires_grad for p in self.model.encoder.parameters()):
            h2 = self.model.embed(batch)  # second dropout view
            losses["contrastive"] = spectral_contrastive_loss(
                self.model.projection(h1), self.model.projection(h2), batch.spectrum, hp.temperature, hp.spectral_temperature)
        weights = {"mse": hp.mse_weight, "rank": hp.rank_weight, "contrastive": hp.contrastive_weight}
        loss = sum(weights[k] * v for k, v in losses.items())
        self.log_dict({f"train_{k}": v for k, v in losses.items()}, batch_size=batch.num_graphs)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch.num_graphs)
        return loss

    def validation_step(self, batch, batch_idx):
        self._val_outputs.append((self.model.predict_label(batch).detach(), batch.y))

    def on_validation_epoch_end(self) -> None:
        self._log_ranking("val")

    def test_step(self, batch, batch_idx):
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._log_ranking("test")

    def _log_ranking(self, prefix: str) -> None:
        """``{prefix}_srcc`` (averaged over ranks), ``_kendall`` and ``_mae`` of the epoch's predictions."""
        if not self._val_outputs:
            return
        pred = torch.cat([p for p, _ in self._val_outputs]).cpu().numpy()
        true = torch.cat([t for _, t in self._val_outputs]).cpu().numpy()
        self._val_outputs.clear()
        gathered = self.all_gather(torch.tensor(srcc(pred, true) if len(true) > 2 else 0.0))
        self.log(f"{prefix}_srcc", gathered.mean(), prog_bar=True, sync_dist=False)
        self.log(f"{prefix}_kendall", kendall_tau(pred, true) if len(true) > 2 else 0.0)
        self.log(f"{prefix}_mae", float(np.mean(np.abs(pred - true))))

    def predict_step(self, batch, batch_idx):
        return self.model.predict_label(batch)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        epochs = max(self.trainer.max_epochs or 1, 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_train_epoch_start(self) -> None:
        if self.hparams.cluster_epoch is not None and self.current_epoch == self.hparams.cluster_epoch:
            self.fit_clusters(self.trainer.datamodule.train_dataloader(shuffle=False))
        if not any(p.requires_grad for p in self.model.encoder.parameters()):
            self.model.encoder.eval()  # frozen embeddings: no dropout noise (Lightning re-enables train mode)

    # ------------------------------------------------------------------ clustering
    @torch.no_grad()
    def embeddings(self, loader) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        out = torch.cat([self.model.embed(batch.to(self.device)) for batch in loader])
        self.model.train(was_training)
        return out

    def fit_clusters(self, loader) -> FuzzyCMeans:
        """Fuzzy c-means on the training embeddings; the heads' centroids become its centroids."""
        head = self.model.head
        embeddings = self.embeddings(loader).cpu().numpy()
        fcm = FuzzyCMeans(head.n_clusters, head.m, random_state=0).fit(embeddings)
        head.set_centers(torch.as_tensor(fcm.cluster_centers_, dtype=head.centers.dtype, device=self.device))
        if self.hparams.freeze_encoder_after_clustering:
            self.model.encoder.requires_grad_(False)
            self.model.encoder.eval()
            self.model.projection.requires_grad_(False)
        sizes = np.bincount(fcm.labels_, minlength=head.n_clusters)
        self.print(f"fuzzy c-means: {head.n_clusters} clusters of {sizes.tolist()} training graphs, {fcm.n_iter_} iterations")
        return fcm
