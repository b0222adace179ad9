"""How much of zero-shot transfer is the pretraining seed? NB-101-pretrained checkpoints scored
zero-shot on NB-201 (the 4,096 without ``none`` and all 15,625) and NB-301, one row each, then the
mean z-scored prediction of each group of checkpoints (a seed ensemble).

    python experiments/seed_variance.py --checkpoints GROUP=CKPT [GROUP=CKPT ...]

GROUP names the recipe (``4 layers``, ``6 layers``, ...); a CKPT is a Lightning checkpoint of
``predict-train fit --config experiments/gennape_nb101.yaml [overrides]`` or a shipped name. Writes
experiments/results/seed_variance.md (``--out STEM``: STEM.md). ``--tail-windows W ...`` scores
every checkpoint once per tail window (how far up its FLOPs span a size-label checkpoint reads the
slope it extends below them; ``predictors.size_prior.TAIL_WINDOW``) instead of the one it stores.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
KEYS = {"nb201_no_none/cifar10": "NB-201 4,096", "nb201/cifar10": "NB-201 all", "nb301/cifar10": "NB-301"}


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True, help="GROUP=CKPT pairs")
    parser.add_argument("--out", default="seed_variance", help="results file stem in experiments/results")
    parser.add_argument("--tail-windows", type=float, nargs="+", default=None,
                        help="score size-label checkpoints with each of these TAIL_WINDOW values "
                             "(predictors/size_prior.py) instead of the one each stores, one group each")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from gennape_protocol import column, lean_model, load_family, predict

    from predictors.metrics import srcc

    families = {key: load_family(key) for key in KEYS}
    truth = {key: column(dataset, "y") for key, dataset in families.items()}
    rows, groups = [], defaultdict(list)
    windows = args.tail_windows or [None]  # None: the window each checkpoint stores
    for window, pair in itertools.product(windows, args.checkpoints):
        group, _, checkpoint = pair.partition("=")
        group = f"{group}, tail window {window:g}" if window is not None else group
        model = lean_model(checkpoint).eval()
        if window is not None and model.transform.kind == "size":
            model.transform.tail_window.fill_(window)
        predictions = {key: predict(model, dataset) for key, dataset in families.items()}
        groups[group].append(predictions)
        rows.append((f"{group}: `{Path(checkpoint).name}`", {key: srcc(p, truth[key]) for key, p in predictions.items()}))
        print(rows[-1][0], {KEYS[k]: round(v, 3) for k, v in rows[-1][1].items()}, flush=True)
    for group, members in groups.items():
        if len(members) > 1:
            scores = {key: [srcc(m[key], truth[key]) for m in members] for key in KEYS}
            rows.append((f"{group}: mean +- std of {len(members)} seeds", scores))
            rows.append((f"{group}: seed ensemble (mean z-score)",
                         {key: srcc(sum(zscore(m[key]) for m in members), truth[key]) for key in KEYS}))
    lines = ["# Zero-shot transfer across pretraining seeds", "",
             "Command: `python experiments/seed_variance.py --checkpoints " + " ".join(f"'{c}'" for c in args.checkpoints)
             + (" --tail-windows " + " ".join(f"{w:g}" for w in args.tail_windows) if args.tail_windows else "")
             + f" --out {args.out}`  ",
             "SRCC of zero-shot predictions (no target labels). Every checkpoint is pretrained on NB-101 alone.", "",
             "| checkpoint | " + " | ".join(KEYS.values()) + " |", "|---|" + "---|" * len(KEYS)]
    for name, scores in rows:
        cells = [f"{np.mean(v):.3f} +- {np.std(v):.3f}" if isinstance(v, list) else f"{v:.3f}" for v in scores.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
