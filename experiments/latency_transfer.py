"""Latency on hardware the predictor has never seen, from 10-20 measured networks (issue 7, HELP data).

    python experiments/latency_transfer.py [--checkpoint default] [--spaces nb201 fbnet ofa_mbv3]
                                           [--samples 10 20] [--seeds 5] [--epochs 300]

Leave-one-hardware-out. A hardware is a device at all its batch sizes (``1080ti_1``, ``1080ti_32``,
``1080ti_256``). For each hardware, latency heads (:mod:`predictors.latency`) are trained on every
*other* hardware's measurements of all ``--spaces``. Then, for each of its settings and each space
it measured, ``k`` random networks are "measured" (seeded) and four predictors are fitted on them
and scored on all other networks of that space:
- FLOPs-linear: latency = a * FLOPs + b, least squares (the issue's baseline; FLOPs of everything
  that runs, folded nodes included);
- inputs ridge: ridge regression of log latency on the raw inputs (CG embedding + cost profile);
- latency heads: the trunk trained on the other hardware and ``LatencyHeads.add_device``, what
  users get: a ridge read-out of the trunk's ``z`` averaged with the known devices' read-outs
  mapped onto the new one;
- heads, blended read-out: the same trunk, and :func:`predictors.few_shot.few_shot` with every
  known device's prediction as a zero-shot column and ``z`` as embedding (studied, not shipped).
SRCC and the share of predictions within +-10 % of the measured latency. Writes
experiments/results/latency_transfer.{md,json,png}.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"
METHODS = (("flops", "FLOPs-linear"), ("ridge", "inputs ridge"), ("heads", "latency heads"),
           ("heads_blend", "heads, blended read-out"))


def hardware(device: str) -> str:
    """``1080ti_256`` -> ``1080ti``; ``pixel3`` -> ``pixel3``."""
    return re.sub(r"_\d+$", "", device) if re.search(r"_(1|32|64|256)$", device) else device


def ridge_fit_predict(train_x, train_y, test_x):
    from sklearn.linear_model import RidgeCV

    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit((train_x - mean) / std, train_y)
    return ridge.predict((test_x - mean) / std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--spaces", nargs="+", default=["nb201", "fbnet", "ofa_mbv3"])
    parser.add_argument("--samples", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)

    import copy

    from predictors.few_shot import FEW_SHOT_CANDIDATES, few_shot
    from predictors.latency import fit_latency_heads, latency_table, within
    from predictors.metrics import srcc

    candidates = {k: v for k, v in FEW_SHOT_CANDIDATES.items() if k != "size"}  # z holds no FLOPs column
    inputs, macs, space_of, table = latency_table(args.checkpoint, args.spaces)
    devices = list(table)
    log_table = torch.tensor(np.log(np.stack([table[d] for d in devices], 1)), dtype=torch.float32)
    raw = inputs.double().numpy()
    rows = []
    for group in sorted({hardware(d) for d in devices}):
        seen = [j for j, d in enumerate(devices) if hardware(d) != group]
        heads = fit_latency_heads(inputs, log_table[:, seen], [devices[j] for j in seen], epochs=args.epochs)
        with torch.no_grad():
            z = heads.latent(inputs).double().numpy()
            known = heads(inputs).double().numpy()  # every trained device's prediction
        for device in (d for d in devices if hardware(d) == group):
            for space in args.spaces:
                valid = np.flatnonzero((space_of == space) & np.isfinite(table[device]))
                if len(valid) == 0:
                    continue
                latency = table[device]
                for k in args.samples:
                    scores = {"flops": [], "ridge": [], "heads": [], "heads_blend": []}
                    for seed in range(args.seeds):
                        rng = np.random.default_rng(seed)
                        train = rng.choice(valid, k, replace=False)
                        test = np.setdiff1d(valid, train)
                        slope, intercept = np.polyfit(macs[train], latency[train], 1)
                        preds = {
                            "flops": slope * macs[test] + intercept,
                            "ridge": np.exp(ridge_fit_predict(raw[train], np.log(latency[train]), raw[test])),
                            "heads": copy.deepcopy(heads).add_device("new", inputs[torch.as_tensor(train)], latency[train])
                                     .predict_ms(inputs[torch.as_tensor(test)], ["new"])[:, 0].numpy(),
                            "heads_blend": np.exp(few_shot(known[train], z[train], np.log(latency[train]),
                                                           known[test], z[test], candidates)[0]),
                        }
                        for name, pred in preds.items():
                            scores[name].append((srcc(pred, latency[test]), within(pred, latency[test])))
                    row = {"device": device, "space": space, "samples": k,
                           **{f"{name}_{m}": float(np.mean([s[i] for s in v])) for name, v in scores.items()
                              for i, m in enumerate(("srcc", "within10"))}}
                    rows.append(row)
                    print(f"{space} {device} k={k}: FLOPs {row['flops_srcc']:.3f}/{row['flops_within10']:.2f} "
                          f"ridge {row['ridge_srcc']:.3f}/{row['ridge_within10']:.2f} "
                          f"heads {row['heads_srcc']:.3f}/{row['heads_within10']:.2f} "
                          f"heads-blend {row['heads_blend_srcc']:.3f}/{row['heads_blend_within10']:.2f}", flush=True)
    write_results(rows, args)


def write_results(rows: list[dict], args) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency_transfer.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    command = (f"python experiments/latency_transfer.py --checkpoint {args.checkpoint} --spaces {' '.join(args.spaces)} "
               f"--samples {' '.join(map(str, args.samples))} --seeds {args.seeds} --epochs {args.epochs}")
    names = METHODS
    lines = ["# Latency on unseen hardware from few measurements (HELP)", "",
             f"Command: `{command}`  ",
             "Leave-one-hardware-out: the latency heads never saw any batch size of the evaluated device. "
             f"Means over {args.seeds} seeds of the measured sample; scored on all other networks of the space. "
             "Bars (issue 7): HELP's meta-learned predictor mean SRCC 0.932 on unseen devices from 10 samples; "
             "nn-Meter 99 % within +-10 % on mobile CPU/GPU.", "",
             "## Means per space and sample size", "",
             "| space | samples | devices | " + " | ".join(f"{n} SRCC | {n} +-10 %" for _, n in names) + " |",
             "|---|---|---|" + "---|---|" * len(names)]
    for space in args.spaces:
        for k in args.samples:
            sel = [r for r in rows if r["space"] == space and r["samples"] == k]
            if sel:
                cells = " | ".join(f"{np.mean([r[f'{m}_srcc'] for r in sel]):.3f} | {np.mean([r[f'{m}_within10'] for r in sel]):.2f}"
                                   for m, _ in names)
                lines.append(f"| {space} | {k} | {len(sel)} | {cells} |")
    k = max(args.samples)
    lines += ["", f"## Per device, {k} samples", "",
              "| space | device | " + " | ".join(f"{n} SRCC | {n} +-10 %" for _, n in names) + " |",
              "|---|---|" + "---|---|" * len(names)]
    for r in (r for r in rows if r["samples"] == k):
        cells = " | ".join(f"{r[f'{m}_srcc']:.3f} | {r[f'{m}_within10']:.2f}" for m, _ in names)
        lines.append(f"| {r['space']} | {r['device']} | {cells} |")
    (RESULTS / "latency_transfer.md").write_text("\n".join(lines) + "\n")
    plot(rows, k)
    print(f"wrote {RESULTS / 'latency_transfer.md'}")


def plot(rows: list[dict], k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in rows if r["samples"] == k]
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(sel)), 4))
    x = np.arange(len(sel))
    for offset, (m, label) in zip((-0.3, -0.1, 0.1, 0.3), METHODS):
        ax.bar(x + offset, [r[f"{m}_srcc"] for r in sel], width=0.2, label=label)
    ax.set_xticks(x, [f"{r['space']}:{r['device']}" for r in sel], rotation=90, fontsize=6)
    ax.set_ylabel(f"SRCC from {k} measured networks")
    ax.axhline(0.932, color="k", lw=0.8, ls="--", label="HELP, 10 samples (mean)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(RESULTS / "latency_transfer.png", dpi=130)


if __name__ == "__main__":
    main()
