"""How much does the draw of the labelled networks move the GENNAPE protocol's 50-shot rows?

    python experiments/shot_draws.py [--checkpoint nb101] [--shots 50] [--draws 5] [--workers 2]

The protocol (``gennape_protocol.py``) fine-tunes on one fixed draw of ``--shots`` target networks
(draw 0 here is that draw). This script repeats its few-shot rows on ``--draws`` draws per target,
each scored on the rest of the target, and reports mean +- std over draws:
- fine-tuned: ``Predictor.finetune``'s loop (every layer, ``FINETUNE_EPOCHS`` epochs);
- blended: :func:`predictors.few_shot.few_shot` on the zero-shot column, and the mean of the two;
- baselines on the same draws: parameter count and FLOPs (label-free, scored on the same rest), the
  same loop from random weights, and a random forest on the space's own encoding (seed 0).
Writes experiments/results/shot_draws.md (+ .json, .png; ``--out STEM``: STEM.md, ...).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
TARGETS = {"nb201/cifar10": (0.93, 0.910), "nb301/cifar10": (0.89, 0.883)}  # (issue 5's bar, GENNAPE 50-shot)
METHODS = ("finetuned", "blended", "blended + finetuned", "params", "FLOPs", "scratch, fine-tuning loop", "random forest")


def run_target(key: str, args) -> dict:
    """Per draw: SRCC of every method on the networks outside the draw."""
    from gennape_protocol import (FINETUNE_EPOCHS, blended_few_shot, column, finetune_like_users, lean_model, load_family,
                                  predict_and_embed)

    from predictors.baselines import random_forest_baseline
    from predictors.lightning_module import from_pretrained_module
    from predictors.metrics import srcc
    from predictors.model import constant_output_mask

    torch.set_num_threads(1)
    dataset = load_family(key)
    hparams = dict(from_pretrained_module(args.checkpoint).hparams)
    pretrained, scratch = lean_model(args.checkpoint, hparams), lean_model(None, hparams)
    zero_shot, embedding = predict_and_embed(pretrained, dataset)
    y, constant = column(dataset, "y"), constant_output_mask(dataset)
    params, macs = column(dataset, "params"), column(dataset, "macs")
    records = dataset.records
    draws = []
    for draw in range(args.draws):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(draw))  # draw 0 = the protocol's
        support, query = order[:args.shots], order[args.shots:]
        train, test = dataset[support], dataset[query]
        true = y[query.numpy()]
        tuned = finetune_like_users(pretrained, train, test, "all", FINETUNE_EPOCHS)
        blend = blended_few_shot(zero_shot, embedding, y, support.numpy(), query.numpy(), constant)
        from_scratch = finetune_like_users(scratch, train, test, "all", FINETUNE_EPOCHS)
        forest = random_forest_baseline(key.split("/")[0], [records[int(d.index)].arch for d in train], column(train, "y"),
                                        [records[int(d.index)].arch for d in test], seed=0)
        scores = {"finetuned": tuned, "blended": blend, "blended + finetuned": (blend + tuned) / 2,
                  "params": params[query.numpy()], "FLOPs": macs[query.numpy()],
                  "scratch, fine-tuning loop": from_scratch, "random forest": forest}
        draws.append({"draw": draw, "zero-shot on the rest": srcc(zero_shot[query.numpy()], true),
                      **{name: srcc(pred, true) for name, pred in scores.items()}})
        print(f"{key} draw {draw}: " + ", ".join(f"{k} {v:.3f}" for k, v in draws[-1].items() if isinstance(v, float)),
              flush=True)
    return {"key": key, "draws": draws}


def write_results(results: list[dict], args) -> None:
    command = (f"python experiments/shot_draws.py --checkpoint {args.checkpoint} --shots {args.shots} "
               f"--draws {args.draws} --out {args.out}")
    lines = [f"# {args.shots}-shot SRCC over {args.draws} draws of the labelled networks", "", f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`. Each draw: {args.shots} random target networks labelled (draw 0 is "
             "`gennape_protocol.py`'s), scored on all the others. Mean +- std over draws; min / max in brackets.", "",
             *summary_table(results)]
    lines += ["", "Per draw:", "",
              "| target | draw | zero-shot on the rest | " + " | ".join(METHODS) + " |", "|---|---|---|" + "---|" * len(METHODS)]
    for result in results:
        for d in result["draws"]:
            lines.append(f"| {result['key']} | {d['draw']} | {d['zero-shot on the rest']:.3f} | "
                         + " | ".join(f"{d[m]:.3f}" for m in METHODS) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    strip_plot(results, ("zero-shot on the rest", *METHODS), RESULTS / f"{args.out}.png")
    print("\n".join(lines))


def summary_table(results: list[dict], labels_column: bool = False) -> list[str]:
    """Markdown rows: every method's SRCC over draws (:func:`over_draws`), one row per result, with
    the target's bar; ``labels_column`` adds each result's number of labels."""
    header = ["target", "issue 5's bar (GENNAPE 50-shot)", *(["labels"] if labels_column else []), "zero-shot on the rest", *METHODS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        bar, gennape = TARGETS[result["key"]]
        cells = [result["key"], f"{bar} ({gennape})", *([str(result["shots"])] if labels_column else []),
                 *(over_draws(result["draws"], name) for name in ("zero-shot on the rest", *METHODS))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def over_draws(draws: list[dict], name: str) -> str:
    """``name``'s SRCC over draws as "mean +- std [min, max]"."""
    values = np.array([d[name] for d in draws])
    return f"{values.mean():.3f} +- {values.std():.3f} [{values.min():.3f}, {values.max():.3f}]"


def strip_plot(results: list[dict], names, path: Path) -> None:
    """One panel per target: every draw's SRCC per method, with issue 5's bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, result in zip(axes[0], results):
        for i, name in enumerate(names):
            values = [d[name] for d in result["draws"]]
            ax.scatter(np.full(len(values), i), values, s=14)
        ax.axhline(TARGETS[result["key"]][0], color="k", ls="--", lw=0.8, label="issue 5's bar")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=7)
        ax.set_title(result["key"])
        ax.set_ylabel("SRCC on the rest")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def labels_plot(results: list[dict], methods, path: Path, bars: dict | None = None) -> None:
    """SRCC against the number of labels, one panel per target: mean over draws with a min-max band
    per method, and each target's bar from ``bars`` (key -> SRCC). ``results``: dicts with ``key``,
    ``shots`` and ``draws`` (each draw maps a method to its SRCC)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(r["key"] for r in results))
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = sorted((r for r in results if r["key"] == key), key=lambda r: r["shots"])
        shots = [r["shots"] for r in rows]
        for method in methods:
            values = np.array([[d[method] for d in r["draws"]] for r in rows])
            ax.plot(shots, values.mean(1), marker="o", ms=3, label=method)
            ax.fill_between(shots, values.min(1), values.max(1), alpha=0.15)
        if bars and key in bars:
            ax.axhline(bars[key], color="k", ls="--", lw=0.8, label="issue 5's 50-shot bar")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set(title=key, xlabel="labelled networks", ylabel="SRCC on the rest")
        ax.set_xticks(shots, [str(n) for n in shots])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def draw_arguments(description: str, draws: int, shots: int | list[int] = 50) -> argparse.ArgumentParser:
    """The options of a script that scores draws of labelled networks on every target (a list of
    ``shots``: ``--shots`` takes several numbers of labels)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--shots", type=int, default=shots, nargs="+" if isinstance(shots, list) else None)
    parser.add_argument("--draws", type=int, default=draws)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each evaluates one target, or one target and number of labels)")
    return parser


def on_every_target(run_target, args) -> list[dict]:
    """``run_target(key, args)`` for every target, ``--workers`` at a time."""
    with ProcessPoolExecutor(args.workers) as pool:
        return list(pool.map(run_target, TARGETS, [args] * len(TARGETS)))


def main() -> None:
    parser = draw_arguments(__doc__.splitlines()[0], draws=5)
    parser.add_argument("--out", default="shot_draws", help="results file stem in experiments/results")
    args = parser.parse_args()
    write_results(on_every_target(run_target, args), args)


if __name__ == "__main__":
    main()
