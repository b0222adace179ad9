"""Exponential moving average of the weights during pretraining (Lightning's ``WeightAveraging``).

Validation, checkpoints and the final model use the averaged weights. At the module's
``cluster_epoch`` the average becomes the model itself before fuzzy c-means runs, so the encoder
that is frozen and clustered is the averaged one; the average then restarts from that state, so
the heads' average never mixes weights from before and after the clustering.
"""
from __future__ import annotations

from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn


class ClusteringAwareEMA(WeightAveraging):
    """EMA of every parameter and buffer with ``decay`` per optimizer step (0.995: a horizon of about
    200 steps, four epochs of the NB-101 recipe)."""

    def __init__(self, decay: float = 0.995):
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # Runs before the module's own hook, which fits the clusters on the (now averaged) encoder.
        if trainer.current_epoch == pl_module.hparams.get("cluster_epoch") and self._latest_update_step > 0:
            self._copy_average_to_current(pl_module)
            self._average_model.n_averaged.zero_()  # the next update copies the model: a fresh average
