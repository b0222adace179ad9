"""Does pretraining on every other space carry to a new one better than NB-101 alone?

    predict-train fit --config experiments/default_all.yaml --data.keys '[nb101/val_acc_108, nb201/cifar10]' \\
        --trainer.default_root_dir experiments/runs/no_nb301
    predict-train fit --config experiments/default_all.yaml --data.keys '[nb101/val_acc_108, nb301/cifar10]' \\
        --trainer.default_root_dir experiments/runs/no_nb201
    python experiments/leave_one_space_out.py --runs nb301/cifar10=NO_NB301.ckpt nb201/cifar10=NO_NB201.ckpt [--draws 5]

Each run is the ``default`` checkpoint's recipe (``default_all.yaml``) with the target space left out
of its sources. For each target this scores, beside the NB-101-only ``nb101`` checkpoint:
- zero-shot SRCC on the whole target (NB-201 also on the 4,096 cells without ``none``), alone and
  with the size prior fitted on the run's own training split (``predict --size-prior``); parameter
  count and FLOPs in the same run;
- ``shot_draws.py``'s 50-shot rows on its draws (draw 0 is the protocol's): fine-tuned, blended,
  both, and the scratch and random-forest baselines; ``nb101``'s rows are read from
  ``shot_draws.json`` (same draws, same code).
Writes experiments/results/leave_one_space_out.md (+ .json, .png).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
ALL_SOURCES = ROOT / "experiments" / "default_all.yaml"
SUBSETS = {"nb301/cifar10": ["nb301/cifar10"], "nb201/cifar10": ["nb201_no_none/cifar10", "nb201/cifar10"]}
FEW_SHOT = ("finetuned", "blended", "blended + finetuned", "scratch, fine-tuning loop", "random forest")


def size_prior_of(keys: list[str]):
    """The size prior fitted on the training split of ``default_all.yaml`` restricted to ``keys``."""
    from predictors.size_prior import SizePrior, training_split

    config = yaml.safe_load(ALL_SOURCES.read_text())
    config["data"]["keys"] = keys
    train = training_split(config).train_set
    return SizePrior.fit(train.macs.numpy(), train.y.numpy())


def zero_shot_rows(target: str, checkpoint: str) -> tuple[dict, dict]:
    """SRCC per subset of ``target`` for params, FLOPs and both checkpoints with and without their size
    prior; and the predictions on the whole target for the plot."""
    from gennape_protocol import column, ensemble, flops_predictor, lean_model, load_family, predict

    from predictors.metrics import srcc
    from predictors.model import constant_output_mask

    sources = [k for k in yaml.safe_load(ALL_SOURCES.read_text())["data"]["keys"] if k != target]
    priors = {"nb101": flops_predictor()[0], checkpoint: size_prior_of(sources)}
    rows, shown = {}, {}
    for subset in SUBSETS[target]:
        dataset = load_family(subset)
        y, macs, constant = column(dataset, "y"), column(dataset, "macs"), constant_output_mask(dataset)
        scores = {"params": column(dataset, "params"), "FLOPs": macs}
        for name, ckpt in (("NB-101 only (`nb101`)", "nb101"), ("every other source", checkpoint)):
            pred = predict(lean_model(ckpt).eval(), dataset)
            scores[name] = pred
            scores[f"{name} + size prior"] = ensemble(pred, macs, priors[ckpt], constant)
            if subset == target:
                shown[name] = (pred, y)
        rows[subset] = {name: srcc(score, y) for name, score in scores.items()}
        print(subset, {k: round(v, 3) for k, v in rows[subset].items()}, flush=True)
    return rows, shown


def few_shot_rows(target: str, checkpoint: str, draws: int) -> dict:
    """Mean +- std over draws of shot_draws.py's rows, for the run and (stored) for ``nb101``."""
    from shot_draws import run_target

    ours = run_target(target, argparse.Namespace(checkpoint=checkpoint, shots=50, draws=draws))["draws"]
    stored = json.loads((RESULTS / "shot_draws.json").read_text())["results"]
    nb101 = next(r["draws"] for r in stored if r["key"] == target)[:draws]
    return {"every other source": {m: [d[m] for d in ours] for m in ("zero-shot on the rest", *FEW_SHOT)},
            "NB-101 only (`nb101`, shot_draws.json)": {m: [d[m] for d in nb101] for m in ("zero-shot on the rest", *FEW_SHOT)}}


def write_results(results: dict, args) -> None:
    command = "python experiments/leave_one_space_out.py --runs " + " ".join(args.runs) + f" --draws {args.draws}"
    lines = ["# Pretraining on every other space vs on NB-101 alone", "", f"Command: `{command}`  ",
             "Each run: `predict-train fit --config experiments/default_all.yaml` with the target left out of "
             "`data.keys` (seed 0). Zero-shot SRCC, nothing fitted on the target:", ""]
    for target, result in results.items():
        subsets = list(result["zero_shot"])
        lines += [f"## {target}", "", "| zero-shot | " + " | ".join(subsets) + " |", "|---|" + "---|" * len(subsets)]
        for name in result["zero_shot"][subsets[0]]:
            lines.append(f"| {name} | " + " | ".join(f"{result['zero_shot'][s][name]:.3f}" for s in subsets) + " |")
        methods = ("zero-shot on the rest", *FEW_SHOT)
        lines += ["", f"50-shot, mean +- std over {args.draws} draws, scored on the rest:", "",
                  "| pretrained on | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for name, scores in result["few_shot"].items():
            lines.append(f"| {name} | " + " | ".join(f"{np.mean(scores[m]):.3f} +- {np.std(scores[m]):.3f}"
                                                    for m in methods) + " |")
        lines.append("")
    (RESULTS / "leave_one_space_out.md").write_text("\n".join(lines))
    json_results = {t: {k: v for k, v in r.items() if k != "shown"} for t, r in results.items()}
    (RESULTS / "leave_one_space_out.json").write_text(json.dumps({"command": command, "results": json_results}, indent=1))
    _plot(results)
    print("\n".join(lines))


def _plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from predictors.metrics import srcc

    fig, axes = plt.subplots(len(results), 2, figsize=(9, 4 * len(results)), squeeze=False)
    for row, (target, result) in zip(axes, results.items()):
        for ax, (name, (pred, y)) in zip(row, result["shown"].items()):
            ax.scatter(y, pred, s=3, alpha=0.4)
            ax.set_title(f"{target}: {name}, SRCC {srcc(pred, y):.3f}", fontsize=9)
            ax.set_xlabel("true accuracy (%)")
            ax.set_ylabel("zero-shot prediction (%)")
    fig.tight_layout()
    fig.savefig(RESULTS / "leave_one_space_out.png", dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="TARGET=CKPT pairs (target left out of the run)")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for pair in args.runs:
        target, _, checkpoint = pair.partition("=")
        zero_shot, shown = zero_shot_rows(target, checkpoint)
        results[target] = {"zero_shot": zero_shot, "few_shot": few_shot_rows(target, checkpoint, args.draws),
                           "shown": shown}
    write_results(results, args)


if __name__ == "__main__":
    main()
