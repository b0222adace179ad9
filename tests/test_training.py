"""Lightning training through the project's own entry points: the held-out test split's metrics."""
from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from bench_data.datamodule import BenchDataModule
from bench_data.paths import MissingBenchmarkFile
from graph_encoders.features import visible_columns
from predictors.lightning_module import PredictorModule
from predictors.metrics import kendall_tau, srcc


def test_test_split_metrics_are_the_held_out_rankings(tmp_path):
    try:
        data = BenchDataModule("nb201/cifar10", batch_size=32, limit=400, workers=0, seed=0)
        data.setup()
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    L.seed_everything(0, verbose=False)
    module = PredictorModule(width=32, layers=3, n_clusters=2, label_transform="zscore", cluster_epoch=None)
    trainer = L.Trainer(max_epochs=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, data)
    (logged,) = trainer.test(module, data, verbose=False)
    with torch.no_grad():
        module.eval()
        pred = torch.cat([module.model.predict_label(b) for b in data.test_dataloader()]).numpy()
    true = data.test_set.y.numpy()
    assert len(true) == 40  # the 10 % test split, never trained or validated on
    assert logged["test_srcc"] == pytest.approx(srcc(pred, true), abs=1e-5)
    assert logged["test_kendall"] == pytest.approx(kendall_tau(pred, true), abs=1e-5)
    assert logged["test_mae"] == pytest.approx(float(np.mean(np.abs(pred - true))), rel=1e-4)
    assert logged["test_srcc"] > 0.5  # six epochs on 320 NB-201 cells already rank unseen ones


def test_training_starts_from_a_shipped_or_lightning_checkpoint(tmp_path, zoo_export):
    """``init_from`` / :func:`from_pretrained_module` take an exported predictor (a shipped name) or a
    Lightning checkpoint, and the module predicts exactly what the predictor it came from predicts."""
    from graph_encoders import onnx_to_cg
    from predictors.api import Predictor
    from predictors.lightning_module import from_pretrained_module

    from .zoo import ZOO

    graphs = [onnx_to_cg(zoo_export(name), name=name) for name in sorted(ZOO)[:4]]
    expected = [p.accuracy for p in Predictor.from_pretrained("nb101").predict(graphs)]
    from torch_geometric.data import Batch

    pyg = Batch.from_data_list([g.to_pyg() for g in graphs])
    module = from_pretrained_module("nb101").eval()
    with torch.no_grad():
        got = module.model.predict_label(pyg).numpy()
    assert got == pytest.approx(expected, abs=1e-3)
    trainer = L.Trainer(max_epochs=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    for restored in (from_pretrained_module(str(tmp_path / "run.ckpt")), PredictorModule(**module.hparams)):
        with torch.no_grad():
            assert restored.eval().model.predict_label(pyg).numpy() == pytest.approx(expected, abs=1e-3)


def test_experiment_config_runs_through_the_cli_and_keeps_the_run_in_its_root_dir(tmp_path, monkeypatch):
    """``predict-train fit --config experiments/gennape_nb101.yaml`` with an overlay config
    (``spatial_sizes.yaml``) and command-line overrides: the recipe's own files parse, the overlay's
    encoder setting reaches the model, it trains, and the checkpoint, CSV log and config land under the
    overridden ``--trainer.default_root_dir`` (the loggers' ``save_dir`` in the YAML follows it)."""
    from pathlib import Path

    from predictors.train import main

    try:
        BenchDataModule("nb201/cifar10", limit=120, workers=0).setup()
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    experiments = Path(__file__).resolve().parents[1] / "experiments"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr("sys.argv", ["predict-train"])  # pytest's own arguments are not the CLI's
    main(["fit", "--config", str(experiments / "gennape_nb101.yaml"), "--config", str(experiments / "spatial_sizes.yaml"),
          "--data.keys", "[nb201/cifar10]", "--data.limit", "120",
          "--data.workers", "0", "--data.batch_size", "32", "--data.min_label", "null",
          "--model.width", "16", "--model.layers", "2", "--model.cluster_epoch", "1",
          "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1.0", "--trainer.enable_progress_bar", "false",
          "--trainer.default_root_dir", str(tmp_path)])
    checkpoints = list(tmp_path.rglob("best-*.ckpt"))
    assert len(checkpoints) == 1 and (tmp_path / "csv").is_dir()
    assert list(tmp_path.rglob("metrics.csv"))
    saved = next(tmp_path.rglob("config.yaml")).read_text()  # the run's record names where it went
    assert saved.count(f"save_dir: {tmp_path}") == 2 and "experiments/runs" not in saved
    module = PredictorModule.load_from_checkpoint(checkpoints[0])
    assert module.hparams.width == 16 and module.hparams.layers == 2 and module.hparams.node_sizes == "spatial"
    assert module.model.encoder.feature_mask.tolist() == visible_columns("spatial").tolist()


def test_export_merges_overlay_configs_as_the_cli_does():
    """``python -m predictors.export RUN.ckpt --config BASE --config OVERLAY`` rebuilds the run's data
    split from the merged files: the overlay's keys override, the base's others stay."""
    from pathlib import Path

    from predictors.export import merged_config

    experiments = Path(__file__).resolve().parents[1] / "experiments"
    config = merged_config([experiments / "gennape_nb101.yaml", experiments / "spatial_sizes.yaml"])
    assert config["model"]["node_sizes"] == "spatial" and config["model"]["label_transform"] == "size"
    assert config["data"]["min_label"] == 80.0 and config["seed_everything"] == 0
    assert config["trainer"]["default_root_dir"] == "experiments/runs/spatial_sizes"
    assert config["trainer"]["max_epochs"] == 30 and len(config["trainer"]["callbacks"]) == 2


def test_exported_checkpoints_record_every_model_setting_training_can_change():
    """``predictors.export`` stores ``MODEL_KEYS`` as the checkpoint's hyperparameters and every loader
    rebuilds the network from them: a setting the training module passes to the network but the
    export leaves out (``node_sizes`` before session 20) would load as its default, silently."""
    import inspect

    from predictors.export import MODEL_KEYS
    from predictors.model import PerformancePredictor

    trainable_settings = set(inspect.signature(PerformancePredictor).parameters) & set(
        inspect.signature(PredictorModule).parameters)
    assert trainable_settings <= set(MODEL_KEYS)


def test_weight_averaging_clusters_and_ships_the_averaged_encoder(tmp_path, monkeypatch):
    """With :class:`ClusteringAwareEMA`, fuzzy c-means runs on the averaged encoder (not the last
    step's weights), and the trained model is exactly what the heads were fitted to: the encoder
    frozen at clustering and the centroids c-means produced, not an average across the two stages."""
    from predictors.weight_averaging import ClusteringAwareEMA

    try:
        data = BenchDataModule("nb201/cifar10", batch_size=32, limit=200, workers=0, seed=0)
        data.setup()
    except MissingBenchmarkFile as err:
        pytest.skip(str(err))
    seen = {}
    fit_clusters = PredictorModule.fit_clusters

    def recording(module, loader):
        seen["encoder_before"] = {k: v.clone() for k, v in module.model.encoder.state_dict().items()}
        fcm = fit_clusters(module, loader)
        seen["centers"] = module.model.head.centers.detach().clone()
        return fcm

    class Spy(L.Callback):  # the raw weights at the end of the epoch before clustering
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == 1:
                seen["raw"] = {k: v.clone() for k, v in module.model.encoder.state_dict().items()}

    monkeypatch.setattr(PredictorModule, "fit_clusters", recording)
    L.seed_everything(0, verbose=False)
    module = PredictorModule(width=16, layers=2, n_clusters=2, label_transform="zscore", cluster_epoch=2, lr=1e-2)
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[Spy(), ClusteringAwareEMA(decay=0.9)])
    trainer.fit(module, data)
    final = module.model.encoder.state_dict()
    weight = next(k for k, v in final.items() if v.is_floating_point() and v.dim() == 2)
    assert not torch.allclose(seen["encoder_before"][weight], seen["raw"][weight])  # clustered the average
    for name, value in final.items():
        assert torch.equal(value, seen["encoder_before"][name]), name
    assert torch.equal(module.model.head.centers, seen["centers"])
