"""Issue 5's 50-shot reference, "a random forest on the cell encoding plus zero-cost proxies gets
about 0.93" (NB-201), measured on our labels beside the fine-tuned predictor, on the same draws.

    python experiments/zero_cost_reference.py [--checkpoint nb101] [--shots 50] [--draws 20] [--workers 2]

The proxies are NASLib's stored ten (epe_nas, fisher, grad_norm, grasp, jacov, l2_norm, nwot, plain,
snip, synflow; computed on CIFAR-10 images with gradients) plus its flops and params, which exist
for 725 NB-201 cells and for the 725 NB-301 networks. Every draw of ``--shots`` labelled networks
and the rest it is scored on therefore lie inside those 725 (on NB-301 that is the whole target, and
the draws are ``shot_draws.py``'s). Per draw, SRCC on the rest of:
- random forests (300 trees, seed 0) on the space's encoding: alone, plus NASLib's NASWOT (``nwot``),
  plus every proxy, and plus every proxy and the predictor's zero-shot score;
- the predictor fine-tuned as ``Predictor.finetune`` does, and blended + fine-tuned (``shot_draws.py``'s
  rows);
- label-free: parameter count, FLOPs and each stored proxy.
Labels are the protocol's (NB-201: CIFAR-10 test accuracy, NB-301: validation accuracy).
Writes experiments/results/zero_cost_reference.md (+ .json, .png).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
FORESTS = ("RF encoding", "RF encoding + nwot", "RF encoding + every proxy", "RF encoding + every proxy + zero-shot")
PREDICTOR = ("finetuned", "blended + finetuned")
LABEL_FREE = ("params", "FLOPs", "nwot", "jacov", "synflow")  # the table's label-free columns; the json has every proxy
METHODS = PREDICTOR + FORESTS + LABEL_FREE


def signed_log(x: np.ndarray) -> np.ndarray:
    """A monotone squash: a forest ranks the same, and synflow's 1e40s fit the trees' float32."""
    return np.sign(x) * np.log1p(np.abs(x))


def run_target(key: str, args) -> dict:
    from gennape_protocol import (FINETUNE_EPOCHS, blended_few_shot, column, finetune_like_users, lean_model, load_family,
                                  predict_and_embed)

    from predictors.baselines import random_forest_baseline, zero_cost_columns
    from predictors.metrics import srcc
    from predictors.model import constant_output_mask

    torch.set_num_threads(1)
    space = key.split("/")[0]
    dataset = load_family(key)
    records = [dataset.records[int(i)] for i in column(dataset, "index")]  # in dataset order
    archs = [r.arch for r in records]
    proxies = {name: signed_log(v) for name, v in zero_cost_columns(space, records).items() if name != "naswot"}
    every_proxy = np.column_stack(list(proxies.values()))
    pool = np.flatnonzero(np.isfinite(proxies["params"]))  # the networks NASLib's file covers
    pretrained = lean_model(args.checkpoint)
    zero_shot, embedding = predict_and_embed(pretrained, dataset)
    y, constant = column(dataset, "y"), constant_output_mask(dataset)
    # our own counts from the CGs (NASLib's flops / params proxies keep their lower-case names)
    label_free = {**proxies, "params": column(dataset, "params"), "FLOPs": column(dataset, "macs")}
    print(f"{key}: {len(pool)} of {len(dataset)} networks carry NASLib's proxies", flush=True)

    def forest(support, query, extra=None):
        return random_forest_baseline(space, [archs[i] for i in support], y[support], [archs[i] for i in query], seed=0,
                                      extra_train=None if extra is None else extra[support],
                                      extra_test=None if extra is None else extra[query])

    draws = []
    for draw in range(args.draws):
        order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(draw)).numpy()]
        support, query = order[:args.shots], order[args.shots:]
        tuned = finetune_like_users(pretrained, dataset[torch.from_numpy(support)], dataset[torch.from_numpy(query)], "all",
                                    FINETUNE_EPOCHS)
        blend = blended_few_shot(zero_shot, embedding, y, support, query, constant)
        scores = {"finetuned": tuned, "blended + finetuned": (blend + tuned) / 2,
                  "RF encoding": forest(support, query),
                  "RF encoding + nwot": forest(support, query, proxies["nwot"]),
                  "RF encoding + every proxy": forest(support, query, every_proxy),
                  "RF encoding + every proxy + zero-shot": forest(support, query,
                                                                  np.column_stack([every_proxy, zero_shot]))}
        row = {"draw": draw, **{name: srcc(pred, y[query]) for name, pred in scores.items()}}
        for name, values in label_free.items():
            keep = query[np.isfinite(values[query])]
            row[name] = srcc(values[keep], y[keep])
        draws.append(row)
        print(f"{key} draw {draw}: " + ", ".join(f"{m} {row[m]:.3f}" for m in METHODS), flush=True)
    return {"key": key, "networks": len(pool), "proxies": sorted(proxies), "draws": draws}


def write_results(results: list[dict], args) -> None:
    from shot_draws import TARGETS, over_draws, strip_plot

    command = (f"python experiments/zero_cost_reference.py --checkpoint {args.checkpoint} --shots {args.shots} "
               f"--draws {args.draws}")
    lines = [f"# Issue 5's {args.shots}-shot reference: random forests on the encoding plus zero-cost proxies", "",
             f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`. Each draw: {args.shots} networks labelled, SRCC on the rest, all inside "
             "the networks NASLib's zero-cost file covers (proxies computed on CIFAR-10 images, with gradients). "
             "Mean +- std over draws; min / max in brackets. nwot / jacov / synflow are NASLib's stored scores, "
             "label-free, scored on the same rest.", ""]
    for result in results:
        bar, gennape = TARGETS[result["key"]]
        lines += [f"## {result['key']}: {result['networks']} networks, {args.shots} labelled, bar {bar} "
                  f"(GENNAPE 50-shot {gennape}, on the whole target)", "", "| method | SRCC on the rest |", "|---|---|"]
        lines += [f"| {name} | {over_draws(result['draws'], name)} |" for name in METHODS]
        lines.append("")
    lines += ["Per draw:", "", "| target | draw | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for result in results:
        lines += [f"| {result['key']} | {d['draw']} | " + " | ".join(f"{d[m]:.3f}" for m in METHODS) + " |"
                  for d in result["draws"]]
    (RESULTS / "zero_cost_reference.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "zero_cost_reference.json").write_text(json.dumps({"command": command, "results": results}, indent=1))
    strip_plot(results, METHODS, RESULTS / "zero_cost_reference.png")
    print("\n".join(lines))


def main() -> None:
    from shot_draws import draw_arguments, on_every_target

    args = draw_arguments(__doc__.splitlines()[0], draws=20).parse_args()
    write_results(on_every_target(run_target, args), args)


if __name__ == "__main__":
    main()
