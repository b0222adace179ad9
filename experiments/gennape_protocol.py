"""The GENNAPE evaluation protocol as one command, with every baseline computed in the same run.

    python experiments/gennape_protocol.py --checkpoint RUN.ckpt [--shots 50] [--seeds 5] [--quick]

RUN.ckpt is a Lightning checkpoint of ``predict-train fit --config experiments/gennape_nb101.yaml``, or
an exported predictor (``--checkpoint nb101`` evaluates the shipped one).

- zero-shot: score every architecture of NB-201 (all 15,625 and the 4,096 without ``none``),
  NB-301 (725) and TransNAS-Bench-101 micro/macro tasks; SRCC, Kendall tau, NDCG@10, MAE, top-5%.
  Beside the single model, a two-member ensemble in GENNAPE's manner (their zero-shot rows average
  six predictors, one of them a FLOPs predictor): the mean of the predictor and a FLOPs predictor
  (isotonic in log FLOPs) fitted on the same NB-101 training split; its in-domain cost is reported;
- few-shot: ``--shots`` random target architectures (one fixed draw), fine-tuned as
  ``Predictor.finetune``'s network does (every layer, minibatches of 64, 200 epochs; heads + top
  encoder layer as a second row; deterministic), evaluated on the rest; the baselines' mean +- std over ``--seeds``.
  Beside it the
  blended few-shot rule of :mod:`predictors.few_shot` (zero-shot ranking, its reweighting, ridges
  on the frozen embedding and on size; no network is retrained) and the mean of the two (what
  ``Predictor.finetune`` returns by default since session 15);
- baselines in the same run: parameter count, FLOPs, a GNN of the same size trained from scratch
  on the same labels (in Lightning with dropout, and with the fine-tuning loop itself, so the
  pretraining's share of a gain is visible), and a random forest on the space's own encoding
  trained on the same labels;
- in-space few labels (TNASP/PINAT splits on NB-201: 78 / 156 / 469 labels, Kendall tau on all).

Writes ``experiments/results/gennape_protocol.md`` (+ ``.json``) and PNG plots beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "experiments" / "results"
FINETUNE_EPOCHS = 200  # Predictor.finetune's default
SOURCE_CONFIG = ROOT / "experiments" / "gennape_nb101.yaml"  # the pretraining split the FLOPs predictor shares
ZERO_SHOT_KEYS = ["nb201/cifar10", "nb201_no_none/cifar10", "nb301/cifar10"] + [
    f"tnb_{variant}/{task}" for variant in ("micro", "macro")
    for task in ("class_scene", "class_object", "room_layout", "jigsaw", "segmentsemantic", "autoencoder", "normal")
]
FEW_SHOT_KEYS = ["nb201/cifar10", "nb301/cifar10"]
IN_SPACE_SIZES = (78, 156, 469)  # the TNASP / PINAT splits; Kendall tau on all 15,625


def load_family(key: str):
    """(CGDataset, records) for a key; ``nb201_no_none`` is the 4,096 NB-201 cells without ``none``."""
    from bench_data.datasets import CGDataset

    subset = key.startswith("nb201_no_none")
    dataset = CGDataset(key.replace("nb201_no_none", "nb201"))
    if subset:
        keep = [i for i, d in enumerate(dataset) if "none" not in dataset.records[int(d.index)].arch]
        dataset = dataset[torch.tensor(keep)]
    return dataset


@torch.no_grad()
def predict(model, dataset) -> np.ndarray:
    return predict_and_embed(model, dataset)[0]


@torch.no_grad()
def predict_and_embed(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and graph embeddings (encoder output plus log FLOPs / params)."""
    from torch_geometric.loader import DataLoader

    model.eval()
    preds, embeddings = [], []
    for batch in DataLoader(dataset, batch_size=1024):
        embedding = model.embed(batch)
        preds.append(model.transform.inverse(model.score_with_spread(batch, embedding)[0], batch.macs))
        embeddings.append(embedding)
    return torch.cat(preds).numpy(), torch.cat(embeddings).double().numpy()


def blended_few_shot(zero_shot: np.ndarray, embedding: np.ndarray, y: np.ndarray, support: np.ndarray,
                     query: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """:func:`predictors.few_shot.few_shot` from one zero-shot column, or one per column of a 2-D
    ``zero_shot`` (``constant``: networks whose output ignores the input)."""
    from predictors.few_shot import few_shot

    columns = zero_shot if zero_shot.ndim == 2 else zero_shot[:, None]
    return few_shot(columns[support], embedding[support], y[support], columns[query], embedding[query],
                    constant=(constant[support], constant[query]))[0]


def flops_predictor():
    """:class:`predictors.size_prior.SizePrior` (accuracy non-decreasing in log FLOPs) fitted on the
    NB-101 training split of :data:`SOURCE_CONFIG`, and that data module (its test split measures the
    cost in domain)."""
    import yaml

    from predictors.size_prior import fit_on_training_split

    return fit_on_training_split(yaml.safe_load(SOURCE_CONFIG.read_text())["data"])


def ensemble(pred: np.ndarray, macs: np.ndarray, prior, constant: np.ndarray) -> np.ndarray:
    """The predictor and the FLOPs predictor, averaged on the accuracy scale (chance stays chance):
    what ``Predictor.predict(..., size_prior=True)`` computes."""
    return np.where(constant, pred, (pred + prior.predict(macs)) / 2)


def column(dataset, name: str) -> np.ndarray:
    return torch.cat([getattr(d, name) for d in dataset]).numpy() if len(dataset) else np.zeros(0)


def lean_model(checkpoint: str | None, hparams: dict | None = None):
    """The pretrained predictor as ``Predictor.from_pretrained`` builds it (lean encoder: what users
    fine-tune); with no checkpoint, the same network freshly initialised (seed 0). ``hparams``
    default to the checkpoint's own."""
    from predictors.export import MODEL_KEYS
    from predictors.lightning_module import from_pretrained_module, pretrained_state
    from predictors.model import PerformancePredictor

    if hparams is None:
        hparams = dict(from_pretrained_module(checkpoint).hparams)
    torch.manual_seed(0)
    model = PerformancePredictor(**{k: hparams[k] for k in MODEL_KEYS}, lean=True)
    if checkpoint is not None:
        model.load_state_dict(pretrained_state(checkpoint), strict=False)
    return model


def finetune_like_users(model, train, query, trainable: str, epochs: int) -> np.ndarray:
    """Predictions on ``query`` after ``Predictor.finetune``'s training on ``train`` (``epochs`` epochs;
    its cross-validation only calibrates the uncertainty, so it is skipped here)."""
    from torch_geometric.data import Batch

    from predictors.finetuning import default_lr, finetune_model

    labels = torch.from_numpy(column(train, "y")).float()
    tuned, _, _ = finetune_model(model, lambda idx: Batch.from_data_list([train[int(i)] for i in idx]), labels,
                                 epochs, trainable, default_lr(trainable), 0, cross_validated=False)
    return predict(tuned, query)


def finetune(module_factory, train, epochs: int, seed: int):
    """Train a PredictorModule on ``train`` only (no validation loop: the rest is the test set)."""
    import lightning as L
    from torch_geometric.loader import DataLoader

    L.seed_everything(seed, workers=True, verbose=False)
    module = module_factory()
    if module.hparams.refit_transform:  # z-score with the target family's labels (AIO-P)
        module.model.transform.fit(torch.from_numpy(column(train, "y")), torch.from_numpy(column(train, "macs")))
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, accelerator="cpu", devices=1)
    trainer.fit(module, DataLoader(train, batch_size=64, shuffle=True))
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="Lightning RUN.ckpt, exported .ckpt or shipped name")
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100, help="training epochs of the GNN-from-scratch baseline")
    parser.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS,
                        help="fine-tuning epochs (default: %(default)s, as Predictor.finetune)")
    parser.add_argument("--quick", action="store_true", help="fewer keys and epochs (smoke test)")
    parser.add_argument("--keys", nargs="+", default=None, help=f"zero-shot targets (default: {' '.join(ZERO_SHOT_KEYS)})")
    parser.add_argument("--out", default="gennape_protocol", help="results file stem in experiments/results")
    args = parser.parse_args()
    plots = "" if args.out == "gennape_protocol" else f"{args.out}_"  # a variant's plots do not overwrite the recipe's
    torch.set_num_threads(1)

    from predictors.baselines import random_forest_baseline
    from predictors.lightning_module import PredictorModule, from_pretrained_module
    from predictors.metrics import all_metrics
    from predictors.model import constant_output_mask

    pretrained = from_pretrained_module(args.checkpoint)
    hp = dict(pretrained.hparams)
    pretrained_lean, scratch_lean = lean_model(args.checkpoint, hp), lean_model(None, hp)
    results = {"checkpoint": str(args.checkpoint), "zero_shot": {}, "few_shot": {}, "in_space": {},
               "command": " ".join(["python experiments/gennape_protocol.py", *sys.argv[1:]])}
    keys = args.keys or (ZERO_SHOT_KEYS[:3] if args.quick else ZERO_SHOT_KEYS)
    datasets, zero_shot, constant = {}, {}, {}
    prior, source = flops_predictor()
    test = source.test_set
    pred, _ = predict_and_embed(pretrained.model, test)
    true = column(test, "y")
    results["source"] = {"n": len(test), "predictor": all_metrics(pred, true), "flops predictor": all_metrics(
        prior.predict(column(test, "macs")), true), "ensemble": all_metrics(
        ensemble(pred, column(test, "macs"), prior, constant_output_mask(test)), true)}
    print("nb101 held-out test SRCC: " + ", ".join(f"{k} {v['srcc']:.3f}" for k, v in results["source"].items() if k != "n"))
    for key in keys:
        start = time.time()
        try:
            dataset = datasets[key] = load_family(key)
        except Exception as err:  # noqa: BLE001 - a family that cannot be built is reported, not fatal
            results["zero_shot"][key] = {"error": f"{type(err).__name__}: {err}"}
            print(f"{key}: skipped ({err})", flush=True)
            continue
        true, macs, params = column(dataset, "y"), column(dataset, "macs"), column(dataset, "params")
        pred, embedding = predict_and_embed(pretrained.model, dataset)
        zero_shot[key] = pred, embedding
        constant[key] = constant_output_mask(dataset)
        results["zero_shot"][key] = {
            "n": len(dataset), "predictor": all_metrics(pred, true),
            "ensemble": all_metrics(ensemble(pred, macs, prior, constant[key]), true),
            "params": all_metrics(params, true), "flops": all_metrics(macs, true),
        }
        print(f"{key}: n={len(dataset)} SRCC predictor {results['zero_shot'][key]['predictor']['srcc']:.3f} "
              f"ensemble {results['zero_shot'][key]['ensemble']['srcc']:.3f} "
              f"params {results['zero_shot'][key]['params']['srcc']:.3f} flops {results['zero_shot'][key]['flops']['srcc']:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
        _scatter(pred, true, key, RESULTS / f"{plots}zero_shot_{key.replace('/', '_')}.png")

    epochs = 10 if args.quick else args.epochs
    finetune_epochs = 10 if args.quick else args.finetune_epochs
    results["finetune_epochs"] = finetune_epochs
    for key in FEW_SHOT_KEYS:
        if key not in datasets:
            continue
        dataset = datasets[key]
        space = key.split("/")[0]
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
        train, test = dataset[order[:args.shots]], dataset[order[args.shots:]]
        true = column(test, "y")
        records = dataset.records
        train_archs = [records[int(d.index)].arch for d in train]
        test_archs = [records[int(d.index)].arch for d in test]
        rows = {"blended": [], "finetuned": [], "blended + finetuned": [], "finetuned, top layer": [], "scratch": [],
                "scratch, fine-tuning loop": [], "random_forest": []}
        blend = blended_few_shot(*zero_shot[key], column(dataset, "y"), order[:args.shots].numpy(), order[args.shots:].numpy(),
                                 constant[key])
        tuned = finetune_like_users(pretrained_lean, train, test, "all", finetune_epochs)
        top = finetune_like_users(pretrained_lean, train, test, "top", finetune_epochs)
        scratch_loop = finetune_like_users(scratch_lean, train, test, "all", finetune_epochs)
        deterministic = {"blended": blend, "finetuned": tuned, "blended + finetuned": (blend + tuned) / 2,  # label scale
                         "finetuned, top layer": top, "scratch, fine-tuning loop": scratch_loop}
        for name, pred in deterministic.items():  # full-batch and dropout-free: the same every seed
            rows[name] = [all_metrics(pred, true)] * args.seeds
        for seed in range(args.seeds):
            scratch = finetune(lambda: PredictorModule(**{**hp, "init_from": None, "contrastive_weight": 0.0,
                                                          "cluster_epoch": None}),
                               train, epochs, seed)
            rows["scratch"].append(all_metrics(predict(scratch.model, test), true))
            rf = random_forest_baseline(space, train_archs, column(train, "y"), test_archs, seed=seed)
            rows["random_forest"].append(all_metrics(rf, true))
        results["few_shot"][key] = {name: _mean_std(r) for name, r in rows.items()}
        print(f"{key} {args.shots}-shot SRCC: " + ", ".join(
            f"{n} {results['few_shot'][key][n]['srcc'][0]:.3f}" for n in rows), flush=True)

    if "nb201/cifar10" in datasets and not args.quick:
        dataset = datasets["nb201/cifar10"]
        true = column(dataset, "y")
        for size in IN_SPACE_SIZES:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(size))
            train = dataset[order[:size]]
            everything = np.arange(len(dataset))
            row = {"blended": all_metrics(blended_few_shot(*zero_shot["nb201/cifar10"], true, order[:size].numpy(), everything,
                                                               constant["nb201/cifar10"]), true)}
            tuned = finetune_like_users(pretrained_lean, train, dataset, "all", finetune_epochs)
            row["pretrained"] = all_metrics(tuned, true)
            row["scratch, fine-tuning loop"] = all_metrics(finetune_like_users(scratch_lean, train, dataset, "all",
                                                                               finetune_epochs), true)
            module = finetune(lambda: PredictorModule(**{**hp, "init_from": None, "contrastive_weight": 0.0, "cluster_epoch": None}),
                              train, args.epochs, 0)
            row["scratch"] = all_metrics(predict(module.model, dataset), true)
            results["in_space"][size] = row
            print(f"nb201 in-space {size} labels: Kendall pretrained {row['pretrained']['kendall']:.3f}, "
                  f"blended {row['blended']['kendall']:.3f}, scratch {row['scratch']['kendall']:.3f}", flush=True)
        _shots_plot(results, RESULTS / f"{plots}in_space_nb201.png")

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(results, indent=1))
    (RESULTS / f"{args.out}.md").write_text(_markdown(results))
    print(f"wrote {RESULTS / args.out}.md")


def _mean_std(rows: list[dict]) -> dict:
    return {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in rows[0]}


def _scatter(pred, true, title, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from predictors.metrics import srcc

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(true, pred, s=2, alpha=0.4)
    ax.set_xlabel("true accuracy (%)")
    ax.set_ylabel("predicted accuracy (%)")
    ax.set_title(f"{title}: SRCC {srcc(pred, true):.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _shots_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results["in_space"])
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for name, label in (("pretrained", "GNN, pretrained + fine-tuned"), ("blended", "pretrained, blended few-shot"),
                        ("scratch", "GNN from scratch"), ("scratch, fine-tuning loop", "from scratch, fine-tuning loop")):
        ax.plot(sizes, [results["in_space"][s][name]["kendall"] for s in sizes if name in results["in_space"][s]],
                marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("labelled NB-201 architectures")
    ax.set_ylabel("Kendall tau on all 15,625")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _markdown(results: dict) -> str:
    lines = ["# GENNAPE protocol", "", f"Command: `{results['command']}`  ", f"Checkpoint: `{results['checkpoint']}`", "",
             "## Zero-shot (SRCC / Kendall tau; baselines from the same run)", "",
             "Ensemble: the mean of the predictor and a FLOPs predictor (isotonic in log FLOPs) fitted on the same "
             "NB-101 training split, GENNAPE's way of adding a FLOPs prior to an ensemble.", "",
             "| target | n | predictor SRCC | Kendall | NDCG@10 | MAE | ensemble SRCC | params SRCC | FLOPs SRCC |",
             "|---|---|---|---|---|---|---|---|---|"]
    if "source" in results:
        r = results["source"]
        lines.insert(-2, f"In domain (NB-101 held-out test, {r['n']}): predictor {r['predictor']['srcc']:.3f}, FLOPs predictor "
                         f"{r['flops predictor']['srcc']:.3f}, ensemble {r['ensemble']['srcc']:.3f}.\n")
    for key, r in results["zero_shot"].items():
        if "error" in r:
            lines.append(f"| {key} | - | {r['error']} | | | | | | |")
            continue
        p = r["predictor"]
        lines.append(f"| {key} | {r['n']} | {p['srcc']:.3f} | {p['kendall']:.3f} | {p['ndcg@10']:.3f} | {p['mae']:.2f} | "
                     f"{r['ensemble']['srcc']:.3f} | {r['params']['srcc']:.3f} | {r['flops']['srcc']:.3f} |")
    if results["few_shot"]:
        lines += ["", "## Few-shot (mean +- std over seeds, same training architectures)", "",
                  "| target | model | SRCC | Kendall | MAE |", "|---|---|---|---|---|"]
        for key, models in results["few_shot"].items():
            for name, m in models.items():
                lines.append(f"| {key} | {name} | {m['srcc'][0]:.3f} +- {m['srcc'][1]:.3f} | "
                             f"{m['kendall'][0]:.3f} +- {m['kendall'][1]:.3f} | {m['mae'][0]:.2f} |")
    if results["in_space"]:
        lines += ["", "## In-space few labels on NB-201 (Kendall tau on all 15,625; PINAT 0.549 / 0.631 / 0.706)", "",
                  "| labels | pretrained, fine-tuned | pretrained, blended few-shot | GNN from scratch | "
                  "from scratch, fine-tuning loop |", "|---|---|---|---|---|"]
        for size, row in results["in_space"].items():
            lines.append(f"| {size} | {row['pretrained']['kendall']:.3f} | {row['blended']['kendall']:.3f} | "
                         f"{row['scratch']['kendall']:.3f} | {row['scratch, fine-tuning loop']['kendall']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
