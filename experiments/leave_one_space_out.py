"""Does pretraining on every other space carry to a new one better than NB-101 alone?

    predict-train fit --config experiments/default_all.yaml --data.keys '[nb101/val_acc_108, nb201/cifar10]' \\
        --trainer.default_root_dir experiments/runs/no_nb301 [--seed_everything 1 ...]
    predict-train fit --config experiments/default_all.yaml --data.keys '[nb101/val_acc_108, nb301/cifar10]' \\
        --trainer.default_root_dir experiments/runs/no_nb201 [--seed_everything 1 ...]
    python experiments/leave_one_space_out.py --runs nb301/cifar10=NO_NB301.ckpt [nb301/cifar10=NO_NB301_SEED1.ckpt] \\
        nb201/cifar10=NO_NB201.ckpt [...] [--draws 5]

Each run is the ``default`` checkpoint's recipe (``default_all.yaml``) with the target space left out
of its sources (read from the Lightning checkpoint, and checked); several runs of one target are
pretraining seeds. For each target this scores, beside the NB-101-only ``nb101`` checkpoint:
- zero-shot SRCC of every run on the whole target (NB-201 also on the 4,096 cells without
  ``none``), alone and with the size prior fitted on the run's own training split (``predict
  --size-prior``); parameter count and FLOPs in the same run;
- for the first run of each target, ``shot_draws.py``'s 50-shot rows on its draws (draw 0 is the
  protocol's): fine-tuned, blended, both, and the scratch and random-forest baselines. ``nb101``'s
  rows are read from ``shot_draws.json`` (same draws and code; a rerun of the same fine-tuning
  reproduces to about 0.005 per draw, so smaller gaps are noise).
Writes experiments/results/leave_one_space_out.md (+ .json, .png).
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
SHOTS = 50
SUBSETS = {"nb301/cifar10": ["nb301/cifar10"], "nb201/cifar10": ["nb201_no_none/cifar10", "nb201/cifar10"]}
NB101 = "NB-101 (`nb101`)"


def run_sources(target: str, checkpoint: str) -> dict:
    """The ``data`` section a Lightning checkpoint was trained with; refuses one that saw the target's space."""
    data = dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["datamodule_hyper_parameters"])
    data.pop("_instantiator", None)
    if any(key.split("/")[0] == target.split("/")[0] for key in data["keys"]):
        raise SystemExit(f"{checkpoint}: trained on {data['keys']}, which include the target {target}")
    return data


def run_name(data: dict, index: int) -> str:
    return " + ".join(key.split("/")[0].upper().replace("NB", "NB-") for key in data["keys"]) + f", run {index + 1}"


def zero_shot_rows(target: str, runs: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """SRCC per subset of ``target`` for params, FLOPs, ``nb101`` and every (checkpoint, data section)
    run, each also with its size prior; and the first run's and ``nb101``'s predictions on the
    working networks (for the plot)."""
    from gennape_protocol import column, ensemble, flops_predictor, lean_model, load_family, predict

    from predictors.metrics import srcc
    from predictors.model import constant_output_mask
    from predictors.size_prior import fit_on_training_split

    models = {NB101: (lean_model("nb101").eval(), flops_predictor()[0])}
    for i, (checkpoint, data) in enumerate(runs):
        models[run_name(data, i)] = (lean_model(checkpoint).eval(), fit_on_training_split(data)[0])
    plotted = list(models)[:2]
    rows, shown = {}, {}
    for subset in SUBSETS[target]:
        dataset = load_family(subset)
        y, macs, constant = column(dataset, "y"), column(dataset, "macs"), constant_output_mask(dataset)
        scores = {"params": column(dataset, "params"), "FLOPs": macs}
        for name, (model, prior) in models.items():
            pred = predict(model, dataset)
            scores[name], scores[f"{name} + size prior"] = pred, ensemble(pred, macs, prior, constant)
            if subset == target and name in plotted:
                shown[name] = (pred[~constant], y[~constant])
        rows[subset] = {name: srcc(score, y) for name, score in scores.items()}
        print(subset, {k: round(v, 3) for k, v in rows[subset].items()}, flush=True)
    return rows, shown


def few_shot_rows(target: str, checkpoint: str, name: str, draws: int) -> dict:
    """Per-draw SRCC of shot_draws.py's rows for the run (row ``name``), and ``nb101``'s as stored."""
    from shot_draws import METHODS, run_target

    stored = json.loads((RESULTS / "shot_draws.json").read_text())
    nb101 = next(r["draws"] for r in stored["results"] if r["key"] == target)
    if len(nb101) != draws or f"--checkpoint nb101 --shots {SHOTS} " not in stored["command"]:
        raise SystemExit(f"shot_draws.json holds `{stored['command']}`: rerun it with --shots {SHOTS} --draws {draws}")
    ours = run_target(target, argparse.Namespace(checkpoint=checkpoint, shots=SHOTS, draws=draws))["draws"]
    methods = ("zero-shot on the rest", *(m for m in METHODS if m not in ("params", "FLOPs")))
    return {name: {m: [d[m] for d in ours] for m in methods},
            f"{NB101}, shot_draws.json": {m: [d[m] for d in nb101] for m in methods}}


def write_results(results: dict, args) -> None:
    command = "python experiments/leave_one_space_out.py --runs " + " ".join(args.runs) + f" --draws {args.draws}"
    lines = ["# Pretraining on every other space vs on NB-101 alone", "", f"Command: `{command}`  ",
             "Each run: `predict-train fit --config experiments/default_all.yaml` with the target left out of "
             "`data.keys`; runs of one target differ in `--seed_everything`. Zero-shot SRCC, nothing fitted on the "
             "target; parameter count and FLOPs computed in the same run.", ""]
    for target, result in results.items():
        subsets = list(result["zero_shot"])
        lines += [f"## {target}", "", "Runs: " + ", ".join(f"{i + 1}: `{c}`" for i, c in enumerate(result["runs"])), "",
                  "| zero-shot | " + " | ".join(subsets) + " |", "|---|" + "---|" * len(subsets)]
        for name in result["zero_shot"][subsets[0]]:
            lines.append(f"| {name} | " + " | ".join(f"{result['zero_shot'][s][name]:.3f}" for s in subsets) + " |")
        few_shot = result["few_shot"]
        methods = list(next(iter(few_shot.values())))
        lines += ["", f"{SHOTS}-shot (run 1), mean +- std over {args.draws} draws, scored on the rest of the target "
                  f"(all of it):", "", "| pretrained on | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for name, scores in few_shot.items():
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
            ax.set_title(f"{target}: {name}\nSRCC {srcc(pred, y):.3f} (networks whose output ignores the input left out)",
                         fontsize=8)
            ax.set_xlabel("true accuracy (%)")
            ax.set_ylabel("zero-shot prediction (%)")
    fig.tight_layout()
    fig.savefig(RESULTS / "leave_one_space_out.png", dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True,
                        help=f"TARGET=CKPT pairs, TARGET one of {', '.join(SUBSETS)}; several per target are seeds")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs: dict[str, list[str]] = {}
    for pair in args.runs:
        target, _, checkpoint = pair.partition("=")
        if target not in SUBSETS or not checkpoint:
            parser.error(f"--runs {pair!r}: expected TARGET=CKPT with TARGET one of {', '.join(SUBSETS)}")
        runs.setdefault(target, []).append(checkpoint)
    results = {}
    for target, checkpoints in runs.items():
        sources = [run_sources(target, checkpoint) for checkpoint in checkpoints]
        zero_shot, shown = zero_shot_rows(target, list(zip(checkpoints, sources)))
        few_shot = few_shot_rows(target, checkpoints[0], run_name(sources[0], 0), args.draws)
        results[target] = {"runs": checkpoints, "zero_shot": zero_shot, "few_shot": few_shot, "shown": shown}
    write_results(results, args)


if __name__ == "__main__":
    main()
