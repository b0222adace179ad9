"""Could fine-tuning's cross-validation choose better? Every length it can choose, scored as it scores
them and on the held-out rest, with weight-space interpolation towards the pretrained weights too.

    python experiments/finetune_selection.py [--checkpoint nb101] [--shots 50] [--draws 5] [--workers 2]

``Predictor.finetune`` used to pick the training length (0 = the pretrained ranking, up to 200 epochs) by
the SRCC of 5-fold out-of-fold predictions pooled over the 50 labels (the first rule below); these
results are why it now trains the full length (the fifth). On one of ``shot_draws.py``'s five
NB-201 draws that rule kept the pretrained ranking (with the z-score ``nb101`` of sessions 1-13:
0.805 on the rest, where 200 epochs reach 0.88).
For the same draws, folds and loop, this script reports per length:
- pooled out-of-fold SRCC (what that rule maximised) and the mean of the per-fold SRCCs
  (pooling mixes five fold models, whose offsets could favour the single pretrained model);
- the held-out SRCC of that length trained on all labels;
- the same for the weights interpolated between pretrained and fine-tuned (WiSE-FT, Wortsman et al.
  2022): alpha * fine-tuned + (1 - alpha) * pretrained, alpha in 0.25 / 0.5 / 0.75.
and what each selection rule would give. Writes experiments/results/finetune_selection.md (+ .json;
``--out`` names another stem).
"""
from __future__ import annotations

import argparse
import copy
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
TARGETS = ("nb201/cifar10", "nb301/cifar10")
ALPHAS = (0.25, 0.5, 0.75, 1.0)
RULES = ("pooled, lengths (Predictor.finetune until session 10)", "per fold, lengths", "pooled, lengths x alpha",
         "per fold, lengths x alpha", "always the longest (Predictor.finetune now)", "best length on the rest (oracle)")


def interpolate(start, tuned, alpha: float):
    """``tuned`` with weights alpha * tuned + (1 - alpha) * start (same architecture)."""
    mixed, a, b = copy.deepcopy(tuned), start.state_dict(), tuned.state_dict()
    mixed.load_state_dict({k: (1 - alpha) * a[k] + alpha * b[k] if b[k].is_floating_point() else b[k] for k in b})
    return mixed.eval()


def scored_checkpoints(model, batch_of, y: torch.Tensor, epochs: int, lengths, score) -> dict:
    """``score(m)`` of every (length, alpha) checkpoint of one fine-tuning run of ``model`` on ``y``."""
    from predictors.finetuning import _fit, default_lr

    out, start = {}, {}

    @torch.no_grad()
    def record(epoch, tuned):
        if epoch == 0:
            start["model"] = copy.deepcopy(tuned)  # label transform already refitted to the target
            out[(0, 1.0)] = score(tuned)
        elif epoch in lengths:
            for alpha in ALPHAS:
                out[(epoch, alpha)] = score(interpolate(start["model"], tuned, alpha))

    _fit(copy.deepcopy(model), batch_of, y, epochs, "all", default_lr("all"), 0, on_epoch=record)
    return out


def run_target(key: str, args) -> dict:
    from gennape_protocol import FINETUNE_EPOCHS, column, lean_model, load_family, predict
    from torch_geometric.data import Batch

    from predictors.finetuning import cv_folds, cv_lengths
    from predictors.metrics import srcc

    torch.set_num_threads(1)
    dataset = load_family(key)
    pretrained, y = lean_model(args.checkpoint), column(dataset, "y")
    lengths = cv_lengths(FINETUNE_EPOCHS)[1:]  # 0 is scored once, before training
    draws = []
    for draw in range(args.draws):
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(draw))  # as shot_draws.py
        train, test = dataset[order[:args.shots]], dataset[order[args.shots:]]
        labels = torch.from_numpy(column(train, "y")).float()
        batch_of = lambda idx, train=train: Batch.from_data_list([train[int(i)] for i in idx])  # noqa: E731
        folds = cv_folds(args.shots, 0)  # as Predictor.finetune (seed 0)
        out_of_fold = {}
        for fold in folds:
            rest, held = np.setdiff1d(np.arange(args.shots), fold), batch_of(fold)
            fold_scores = scored_checkpoints(pretrained, lambda idx, rest=rest: batch_of(rest[idx]), labels[rest],
                                             FINETUNE_EPOCHS, lengths, lambda m, held=held: m(held).numpy())
            for k, s in fold_scores.items():
                out_of_fold.setdefault(k, np.zeros(args.shots))[fold] = s
        held_out = scored_checkpoints(pretrained, batch_of, labels, FINETUNE_EPOCHS, lengths,
                                      lambda m: srcc(predict(m, test), y[order[args.shots:].numpy()]))
        rows = [{"epochs": e, "alpha": a, "pooled": srcc(s, labels.numpy()),
                 "per_fold": float(np.mean([srcc(s[f], labels.numpy()[f]) for f in folds])), "held_out": held_out[(e, a)]}
                for (e, a), s in sorted(out_of_fold.items())]
        draws.append({"draw": draw, "checkpoints": rows, "rules": choose(rows)})
        print(f"{key} draw {draw}: " + ", ".join(f"{r} {v['held_out']:.3f} ({v['epochs']}, {v['alpha']})"
                                                  for r, v in draws[-1]["rules"].items()), flush=True)
    return {"key": key, "draws": draws}


def choose(rows: list[dict]) -> dict:
    """What each rule picks (ties as ``cross_validate`` breaks them: the longer, here also the larger alpha)."""
    def best(metric, candidates):
        return max(candidates, key=lambda r: (round(r[metric], 3), r["epochs"], r["alpha"]))

    plain = [r for r in rows if r["alpha"] == 1.0]
    picks = {RULES[0]: best("pooled", plain), RULES[1]: best("per_fold", plain), RULES[2]: best("pooled", rows),
             RULES[3]: best("per_fold", rows), RULES[4]: max(plain, key=lambda r: r["epochs"]),
             RULES[5]: best("held_out", plain)}
    return {rule: {k: r[k] for k in ("epochs", "alpha", "held_out")} for rule, r in picks.items()}


def write_results(results: list[dict], args) -> None:
    command = (f"python experiments/finetune_selection.py --checkpoint {args.checkpoint} --shots {args.shots} "
               f"--draws {args.draws}" + (f" --out {args.out}" if args.out != "finetune_selection" else ""))
    lines = [f"# Choosing the fine-tuning length (and a pretrained-weight interpolation) from {args.shots} labels", "",
             f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`; the draws, folds and loop of `shot_draws.py` / `Predictor.finetune`. "
             "SRCC on the rest of the target for the checkpoint each rule picks: mean over draws, then per draw "
             "(picked epochs, alpha).", "", "| target | " + " | ".join(RULES) + " |", "|---|" + "---|" * len(RULES)]
    for result in results:
        cells = [f"{np.mean([d['rules'][r]['held_out'] for d in result['draws']]):.3f}" for r in RULES]
        lines.append(f"| {result['key']} | " + " | ".join(cells) + " |")
    lines += ["", "| target | draw | " + " | ".join(RULES) + " |", "|---|---|" + "---|" * len(RULES)]
    for result in results:
        for d in result["draws"]:
            cells = [f"{v['held_out']:.3f} ({v['epochs']}, {v['alpha']})" for v in d["rules"].values()]
            lines.append(f"| {result['key']} | {d['draw']} | " + " | ".join(cells) + " |")
    lines += ["", "Every checkpoint: out-of-fold SRCC pooled / mean per fold -> SRCC on the rest.", "",
              "| target | draw | epochs | " + " | ".join(f"alpha {a}" for a in ALPHAS) + " |",
              "|---|---|---|" + "---|" * len(ALPHAS)]
    for result in results:
        for d in result["draws"]:
            by_length = {}
            for r in d["checkpoints"]:
                by_length.setdefault(r["epochs"], {})[r["alpha"]] = f"{r['pooled']:.3f} / {r['per_fold']:.3f} -> {r['held_out']:.3f}"
            for epochs, cells in by_length.items():
                lines.append(f"| {result['key']} | {d['draw']} | {epochs} | " +
                             " | ".join(cells.get(a, "") for a in ALPHAS) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="finetune_selection", help="results file stem in experiments/results")
    args = parser.parse_args()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_target, args.targets, [args] * len(args.targets)))
    write_results(results, args)


if __name__ == "__main__":
    main()
