"""What a size-label checkpoint's zero-shot prediction is made of: the size part h(FLOPs) and the
network's residual, scored apart on NB-201 (the 4,096 without ``none``, all 15,625) and NB-301.

    python experiments/size_residual.py --checkpoints NAME=CKPT [NAME=CKPT ...] [--out size_residual]

A ``size`` checkpoint predicts accuracy = h(log FLOPs) + r: h is fitted on NB-101 and extended below
it (``predictors.label_transform``), r is what the network adds. Per checkpoint and target:
SRCC with accuracy of the prediction, of h alone and of r alone; how r follows size (SRCC with log
FLOPs) and how it follows what size does not explain (SRCC with the residual of a least-squares
line of accuracy on log FLOPs, fitted on the target's labels: a diagnosis, nothing is fitted for
prediction); its spread against h's; and the SRCC of h + w * r for each ``--weights`` w (w = 1 is
the prediction). Then how simple cell statistics follow accuracy, its FLOPs residual and each
checkpoint's r on NB-301, and the same statistics' NB-101 counterparts on NB-101's labels (the
pretraining networks, >= 80 %). Writes experiments/results/size_residual.md (``--out STEM``: STEM.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
RESULTS = ROOT / "experiments" / "results"
from bench_data.spaces.darts import OPS  # noqa: E402
from predictors.metrics import srcc  # noqa: E402
from seed_variance import KEYS  # noqa: E402
from wiring_effect import conv_depth  # noqa: E402

POOLS = {"max_pool_3x3", "avg_pool_3x3"}
PARAMETRIC = {"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}
MIN_LABEL = 80.0  # the NB-101 networks the pretraining keeps (gennape_nb101.yaml's min_label)


def flops_residual(y: np.ndarray, macs: np.ndarray) -> np.ndarray:
    """What a straight line in log FLOPs does not explain of ``y``."""
    x = np.log10(macs + 1.0)
    return y - np.polyval(np.polyfit(x, y, 1), x)


def cell_depth(cell) -> int:
    """Operations on the longest path from the cell's inputs to its output (DARTS ``(src, op)`` pairs)."""
    depth = {0: 0, 1: 0}
    for k in range(len(cell) // 2):
        depth[k + 2] = 1 + max(depth[cell[2 * k][0]], depth[cell[2 * k + 1][0]])
    return max(depth[k] for k in range(2, len(cell) // 2 + 2))


def darts_statistics(arch) -> dict[str, int]:
    stats = {}
    for name, cell in zip(("normal", "reduction"), arch):
        ops = [OPS[op] for _, op in cell]
        stats[f"{name} cell: pools"] = sum(op in POOLS for op in ops)
        stats[f"{name} cell: parametric operations"] = sum(op in PARAMETRIC for op in ops)
        stats[f"{name} cell: skip connections"] = ops.count("skip_connect")
        stats[f"{name} cell: depth (operations on the longest path)"] = cell_depth(cell)
    return stats


def nb101_statistics(arch) -> dict[str, int]:
    matrix, ops = arch
    last = len(ops) - 1
    edges = [(i, j, int(j < last)) for j in range(1, len(ops)) for i in range(j) if matrix[i][j]]  # output: no op
    return {"pools": ops.count("maxpool3x3"), "3x3 convolutions": ops.count("conv3x3-bn-relu"),
            "1x1 convolutions": ops.count("conv1x1-bn-relu"),
            "input -> output edge (a 1x1-projected shortcut)": matrix[0][-1],
            "depth (operations on the longest path)": conv_depth(edges, len(ops))}


def statistics_rows(stats: list[dict], y: np.ndarray, macs: np.ndarray, others: list[np.ndarray]) -> list[str]:
    """One row per statistic: SRCC with accuracy, with its FLOPs residual and with each of ``others``."""
    residual = flops_residual(y, macs)
    return ["| " + " | ".join([name] + [f"{srcc([s[name] for s in stats], v):.3f}" for v in (y, residual, *others)]) + " |"
            for name in stats[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True, help="NAME=CKPT pairs (size-label checkpoints)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5, 1.0, 1.5])
    parser.add_argument("--out", default="size_residual", help="results file stem in experiments/results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from gennape_protocol import column, lean_model, load_family, predict

    families = {key: load_family(key) for key in KEYS}
    truth = {key: column(dataset, "y") for key, dataset in families.items()}
    macs = {key: column(dataset, "macs") for key, dataset in families.items()}
    columns = ["prediction", "h alone", "r alone", "SRCC(r, log FLOPs)", "SRCC(r, FLOPs residual)", "std r / std h"]
    columns += [f"h + {w:g} r" for w in args.weights]
    rows, names, nb301_r = [], [], []
    for pair in args.checkpoints:
        name, _, checkpoint = pair.partition("=")
        names.append(name)
        model = lean_model(checkpoint).eval()
        if model.transform.kind != "size":
            raise SystemExit(f"{checkpoint}: label transform {model.transform.kind!r}, not size: no size part to split off")
        for key, dataset in families.items():
            y, size = truth[key], macs[key]
            prediction = predict(model, dataset)
            h = model.transform.inverse(torch.zeros(len(size)), torch.from_numpy(size)).numpy()
            r = prediction - h
            cells = [srcc(prediction, y), srcc(h, y), srcc(r, y), srcc(r, np.log10(size + 1.0)),
                     srcc(r, flops_residual(y, size)), r.std() / h.std()]
            cells += [srcc(h + w * r, y) for w in args.weights]
            rows.append(f"| {name} | {KEYS[key]} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
            print(rows[-1], flush=True)
            if key == "nb301/cifar10":
                nb301_r.append(r)

    nb301 = families["nb301/cifar10"]
    darts_rows = statistics_rows([darts_statistics(nb301.records[int(d.index)].arch) for d in nb301],
                                 truth["nb301/cifar10"], macs["nb301/cifar10"], nb301_r)
    nb101 = load_family("nb101/val_acc_108")
    nb101 = nb101[torch.from_numpy(column(nb101, "y") >= MIN_LABEL)]
    nb101_rows = statistics_rows([nb101_statistics(nb101.records[int(d.index)].arch) for d in nb101],
                                 column(nb101, "y"), column(nb101, "macs"), [])

    lines = ["# Zero-shot prediction = size part h + network residual r", "",
             "Command: `python experiments/size_residual.py --checkpoints " + " ".join(f"'{c}'" for c in args.checkpoints)
             + (f" --weights {' '.join(f'{w:g}' for w in args.weights)}" if args.weights != parser.get_default("weights") else "")
             + f" --out {args.out}`  ",
             "SRCC with accuracy unless the column says otherwise. h: the checkpoint's size effect (fitted on NB-101, "
             "extended below it); r: prediction - h. FLOPs residual: accuracy minus its least-squares line on log FLOPs "
             "over the target's labels (diagnosis only). Every checkpoint is pretrained on NB-101 alone. On NB-201 all, the "
             "341 networks whose output ignores the input are predicted at chance, so their r is chance - h.", "",
             "| checkpoint | target | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns), *rows, "",
             f"## NB-301 ({len(nb301)} networks): DARTS cell statistics", "",
             "| statistic | SRCC with accuracy | SRCC with the FLOPs residual | "
             + " | ".join(f"SRCC with r of {name}" for name in names) + " |", "|---|---|---|" + "---|" * len(names),
             *darts_rows, "",
             f"## NB-101 ({len(nb101):,} networks >= {MIN_LABEL:g} %, the pretraining family): cell statistics", "",
             "| statistic | SRCC with accuracy | SRCC with the FLOPs residual |", "|---|---|---|", *nb101_rows]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
