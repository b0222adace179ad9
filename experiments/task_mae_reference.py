"""How low can MAE go on each TransNAS-Bench-101 task with 90 % of its networks labelled?

    python experiments/task_mae_reference.py [--checkpoint default] [--spaces tnb_micro tnb_macro] [--dump D.npz]

AIO-P's bar for transfer with 20 labels is MAE under 1 % on every task. This script puts that bar
next to what in-space predictors reach with about 32 times the labels: 10-fold cross-validation
(seed 0) over all networks of the task, each fold trained on the other nine tenths, with
- a ridge on the frozen backbone embedding of ``--checkpoint`` (what ``task_transfer.py``'s
  20-shot blend also reads; regularisation by leave-one-out);
- a random forest (300 trees, seed 0) on the space's own architecture encoding;
- with ``--dump D.npz`` (written by ``task_transfer.py ... --dump D.npz``: its K-Adapter columns,
  trained on the space's six other tasks), a ridge on those columns plus the embedding, mapped onto
  the labels by the 20-shot blend's ``label_scale_map`` (fitted on the training folds' own ridge
  predictions, not held-out ones: with about 640 networks and 72 inputs the ridge barely overfits):
  the strongest reference, every other task's labels and nine tenths of this one's.
MAE in points of the task's percentage (SSIM x 100 for autoencoder and normal; room_layout is a
loss with no percent unit), SRCC beside it, and the 20-shot K-Adapter figures of
``results/task_transfer.json`` when that file is there. Writes experiments/results/task_mae_reference.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
PERCENT_SCALE = {"autoencoder": 100.0, "normal": 100.0}  # SSIM in [0, 1]; the others are percentages already


def cross_validated(fit, x: np.ndarray, y: np.ndarray, folds: int = 10) -> np.ndarray:
    """Out-of-fold predictions of ``fit(x, y) -> predict(x)``: every network predicted by a model that
    never saw its label."""
    from sklearn.model_selection import KFold

    pred = np.zeros(len(y))
    for train, test in KFold(folds, shuffle=True, random_state=0).split(x):
        pred[test] = fit(x[train], y[train])(x[test])
    return pred


def ridge(x_train, y_train):
    """The few-shot blend's ridge (standardised inputs, regularisation by leave-one-out)."""
    from predictors.few_shot import ridge_on

    model = ridge_on(lambda p, e: p)(x_train, None, y_train)
    return lambda x: model(x, None)


def calibrated_ridge(x_train, y_train):
    """The ridge, mapped onto the labels by :func:`predictors.few_shot.label_scale_map` (what the 20-shot
    blend uses), fitted on the ridge's predictions for its own training folds."""
    from predictors.few_shot import label_scale_map

    model = ridge(x_train, y_train)
    to_labels = label_scale_map(model(x_train), y_train)
    return lambda x: to_labels(model(x))


def forest(x_train, y_train):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(300, random_state=0, n_jobs=1).fit(x_train, y_train).predict


def evaluate_space(space: str, encoder, dump: Path | None) -> list[dict]:
    from bench_data.encodings import encode_many
    from predictors.metrics import srcc
    from predictors.task_transfer import backbone_embedding
    from task_transfer import load_tasks

    columns = np.load(dump.with_name(f"{dump.stem}_{space}.npz")) if dump else None
    rows = []
    for task, (graphs, records) in load_tasks(space, encoder).items():
        y = np.array([float(g.y) for g in graphs])
        scale = PERCENT_SCALE.get(task, 1.0)
        row = {"space": space, "task": task, "networks": len(y)}
        embedding = backbone_embedding(graphs)
        inputs = {"ridge on the embedding": (ridge, embedding),
                  "random forest on the encoding": (forest, encode_many(space, [r.arch for r in records]))}
        if columns is not None:
            assert np.allclose(columns[f"{space}/{task}|y"], y), "the dump's networks are not this run's"
            inputs["ridge on K-Adapter columns + embedding, label-scale map"] = (
                calibrated_ridge, np.c_[columns[f"{space}/{task}|kadapter"], embedding])
        for name, (fit, x) in inputs.items():
            pred = cross_validated(fit, x, y)
            row[name] = {"mae": float(np.abs(pred - y).mean() * scale), "srcc": srcc(pred, y)}
        rows.append(row)
        print(f"{space}/{task}: " + ", ".join(f"{k} MAE {row[k]['mae']:.3f} SRCC {row[k]['srcc']:.3f}" for k in inputs),
              flush=True)
    return rows


def twenty_shot_cells() -> dict[tuple[str, str], str]:
    """(space, task) -> the 20-shot K-Adapter MAE (percentage points) and SRCC from task_transfer.json."""
    path = RESULTS / "task_transfer.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    return {(r["space"], r["task"]):
            f"{r['kadapter_k_mae'] * PERCENT_SCALE.get(r['task'], 1.0):.3f} ({r['kadapter_k_srcc']:.3f})" for r in rows}


def write_results(rows: list[dict], args) -> None:
    command = f"python experiments/task_mae_reference.py --checkpoint {args.checkpoint} --spaces {' '.join(args.spaces)}"
    if args.dump:
        command += (f" --dump {args.dump}`, the dump from `python experiments/task_transfer.py --checkpoint "
                    f"{args.checkpoint} --spaces {' '.join(args.spaces)} --dump {args.dump}")
    methods = [m for m in rows[0] if m not in ("space", "task", "networks")]
    lines = ["# TransNAS-Bench-101: MAE with 90 % of each task labelled, against AIO-P's 1 % bar", "",
             f"Command: `{command}`  ",
             "10-fold cross-validation (seed 0) over all networks of each task. MAE (SRCC in brackets) in points of the "
             "task's percentage: SSIM x 100 for autoencoder and normal; room_layout is a loss with no percent unit. "
             "The 20-shot column is the K-Adapter row of `task_transfer.md` (20 labels, mean of its draws).", "",
             "| space | task | networks | 20-shot K-Adapter | " + " | ".join(f"{m}, 90 % labelled" for m in methods) + " |",
             "|---|---|---|---|" + "---|" * len(methods)]
    twenty_shot = twenty_shot_cells()
    for row in rows:
        cells = [f"{row[m]['mae']:.3f} ({row[m]['srcc']:.3f})" for m in methods]
        lines.append(f"| {row['space']} | {row['task']} | {row['networks']} | "
                     f"{twenty_shot.get((row['space'], row['task']), 'n/a')} | "
                     + " | ".join(cells) + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "task_mae_reference.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    from predictors.api import checkpoint_path
    from predictors.model import PerformancePredictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--spaces", nargs="+", default=["tnb_micro", "tnb_macro"])
    parser.add_argument("--dump", type=Path, default=None, help="task_transfer.py's --dump file: adds its K-Adapter columns")
    args = parser.parse_args()
    torch.set_num_threads(1)
    state = torch.load(checkpoint_path(args.checkpoint), map_location="cpu", weights_only=False)
    model = PerformancePredictor(**state["hparams"]).eval()
    model.load_state_dict(state["state_dict"], strict=False)
    write_results([row for space in args.spaces for row in evaluate_space(space, model.encoder, args.dump)], args)


if __name__ == "__main__":
    main()
