"""Turn a Lightning training checkpoint into a small, self-describing predictor checkpoint.

    python -m predictors.export RUN.ckpt --config experiments/gennape_nb101.yaml --name nb101
    python -m predictors.export RUN.ckpt --config experiments/gennape_nb101.yaml --config experiments/spatial_sizes.yaml --name nb101_spatial

It calibrates the uncertainty on the validation split (never seen in training), sets the
out-of-distribution threshold from the training embeddings, records metadata (data, seed, recipe,
command, validation metrics) and writes ``predictors/checkpoints/<name>.ckpt`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch
import yaml

from .api import CHECKPOINT_DIR, Predictor, calibrate, ood_threshold
from .metrics import all_metrics

MODEL_KEYS = ("width", "layers", "conv", "pooling", "dropout", "n_clusters", "head_hidden", "fuzzifier",
              "learn_centers", "label_transform", "node_sizes")


def export(lightning_ckpt: Path, config: dict, out: Path, recipe: str, command: str) -> dict:
    from sklearn.cluster import KMeans

    from bench_data.datamodule import BenchDataModule

    from .lightning_module import PredictorModule

    module = PredictorModule.load_from_checkpoint(lightning_ckpt, map_location="cpu").eval()
    hparams = {k: module.hparams[k] for k in MODEL_KEYS}
    data = BenchDataModule(**config.get("data", {}))
    data.setup()

    def outputs(dataset):
        preds, labels, spread, embeds, macs = [], [], [], [], []
        with torch.no_grad():
            for batch in torch.utils.data.DataLoader(dataset, batch_size=1024, collate_fn=_collate):
                h = module.model.embed(batch)
                z, disagreement = module.model.score_with_spread(batch, h)
                preds.append(z)
                labels.append(module.model.transform(batch.y, batch.macs))
                spread.append(disagreement)
                embeds.append(h)
                macs.append(batch.macs)
        return [torch.cat(x).numpy() for x in (preds, labels, spread, embeds, macs)]

    z_val, y_val, spread_val, _, macs_val = outputs(data.val_set)
    calibration = calibrate(spread_val, z_val - y_val)
    _, _, _, train_embeddings, _ = outputs(data.train_set)
    centers = KMeans(32, n_init=3, random_state=0).fit(train_embeddings).cluster_centers_
    ood = ood_threshold(train_embeddings, centers)
    transform = module.model.transform
    acc_val = transform.inverse(torch.from_numpy(z_val), torch.from_numpy(macs_val)).numpy()
    true_val = transform.inverse(torch.from_numpy(y_val), torch.from_numpy(macs_val)).numpy()
    metadata = {
        "trained_on": list(data.keys), "label": "accuracy (%)", "recipe": recipe, "command": command,
        "seed": config.get("seed_everything", 0), "split_seed": data.hparams.seed, "split": list(data.hparams.split),
        "created": datetime.date.today().isoformat(), "validation": all_metrics(acc_val, true_val),
        "train_size": len(data.train_set),
    }
    predictor = Predictor(module.model, calibration, ood, metadata, hparams)
    out.parent.mkdir(parents=True, exist_ok=True)
    predictor.save(out)
    return metadata


def merged_config(paths: list[Path]) -> dict:
    """The YAML files merged as ``predict-train fit --config A --config B`` merges them: a later file's
    keys override, mappings merge key by key."""
    def merge(base: dict, overlay: dict) -> dict:
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    config: dict = {}
    for path in paths:
        config = merge(config, yaml.safe_load(path.read_text()) or {})
    return config


def _collate(items):
    from torch_geometric.data import Batch

    return Batch.from_data_list(items)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lightning_ckpt", type=Path)
    parser.add_argument("--config", type=Path, required=True, action="append",
                        help="the experiment YAML the run used; repeat for overlays, in the run's order")
    parser.add_argument("--name", required=True, help="checkpoint name (predictors/checkpoints/<name>.ckpt)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = merged_config(args.config)
    out = args.out or CHECKPOINT_DIR / f"{args.name}.ckpt"
    recipe = "predict-train fit " + " ".join(f"--config {path.as_posix()}" for path in args.config)
    command = " ".join(["python -m predictors.export", *(argv if argv is not None else sys.argv[1:])])
    metadata = export(args.lightning_ckpt, config, out, recipe, command)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB); validation {metadata['validation']}")


if __name__ == "__main__":
    main()
