"""A 2-process DDP fit on CPU (gloo), run by tests/test_ddp.py: each rank writes its final weights.

The strategy finds unused parameters because clustering freezes the encoder mid-run (a config choice,
`trainer.strategy: ddp_find_unused_parameters_true` in a YAML config).
"""
from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch


def main(out: Path) -> None:
    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench_data.datamodule import BenchDataModule
    from predictors.lightning_module import PredictorModule

    L.seed_everything(0, verbose=False)
    data = BenchDataModule("nb201/cifar10", batch_size=16, limit=96, workers=0)
    module = PredictorModule(width=16, layers=2, n_clusters=2, cluster_epoch=1)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true", max_epochs=2, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, data)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    torch.save({"state": state, "world": trainer.world_size, "batches": len(trainer.train_dataloader),
                "val_srcc": float(trainer.callback_metrics["val_srcc"])}, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
