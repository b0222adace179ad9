"""Does NAS-Bench-101 teach how wiring affects accuracy the way NAS-Bench-201 needs it?

    python experiments/wiring_effect.py [--checkpoints nb101 RUN.ckpt ...]

Cells with the same operator counts (how many 3x3 convolutions, 1x1 convolutions, pools, ...)
differ only in how the operators are wired. Within each such group this script measures how
accuracy follows the cell's *convolution depth* (the most convolutions on one path from the
cell's input to its output): the SRCC inside every group, averaged with the groups' sizes as
weights. It does so for the labels of both benchmarks and for a predictor's zero-shot
NB-201 predictions, and reports how well the predictor ranks inside the groups and how well its
group means rank the groups. Writes experiments/results/wiring_effect.md.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "experiments" / "results" / "wiring_effect.md"
COMMAND = "python experiments/wiring_effect.py"
MIN_GROUP = 5  # smaller groups say little about a ranking


def conv_depth(edges: list[tuple[int, int, int]], nodes: int) -> int:
    """Most convolutions on one path from node 0 to node ``nodes - 1`` (-1: no path); ``edges`` are
    (source, target, convolutions passed on the edge) with source < target, sorted by target."""
    assert all(src < dst for src, dst, _ in edges) and [dst for _, dst, _ in edges] == sorted(dst for _, dst, _ in edges)
    best = [0] + [-1] * (nodes - 1)
    for src, dst, convs in edges:
        if best[src] >= 0:
            best[dst] = max(best[dst], best[src] + convs)
    return best[-1]


def nb101_cells(min_accuracy: float = 80.0):
    """(operator counts, convolution depth, validation accuracy) of the NB-101 cells at or above
    ``min_accuracy`` (the networks GENNAPE's pretraining keeps)."""
    from bench_data.spaces.nb101 import load_records

    for record in load_records():
        accuracy = record.targets["val_acc_108"]
        if accuracy < min_accuracy:
            continue
        matrix, ops = record.arch
        edges = [(i, j, int("conv" in ops[j])) for j in range(len(ops)) for i in range(j) if matrix[i][j]]
        yield tuple(sorted(Counter(ops).items())), conv_depth(edges, len(ops)), accuracy


def nb201_cell(arch: str) -> tuple[tuple, int]:
    """(operator counts, convolution depth) of an NB-201 cell string; ``none`` edges carry nothing."""
    from bench_data.spaces.nb201 import parse_arch

    inputs = [(src, dst, op) for dst, node in enumerate(parse_arch(arch), start=1) for op, src in node]
    edges = [(src, dst, int("conv" in op)) for src, dst, op in inputs if op != "none"]
    return tuple(sorted(Counter(op for *_, op in inputs).items())), conv_depth(edges, 4)


def _members(groups) -> list[list[int]]:
    """Indices of each group's elements."""
    members = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    return list(members.values())


def within_groups(groups, x: np.ndarray, y: np.ndarray) -> float:
    """Size-weighted mean SRCC of x and y inside each group (groups where either is constant skipped)."""
    from scipy.stats import spearmanr

    values, weights = [], []
    for idx in _members(groups):
        if len(idx) >= MIN_GROUP and np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            values.append(spearmanr(x[idx], y[idx])[0])
            weights.append(len(idx))
    return float(np.average(values, weights=weights)) if values else float("nan")


def group_means(groups, x: np.ndarray) -> np.ndarray:
    """Each element replaced by its group's mean."""
    means = np.empty(len(x))
    for idx in _members(groups):
        means[idx] = x[idx].mean()
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="*", default=["nb101"],
                        help="shipped names, exported files or Lightning checkpoints pretrained on NB-101")
    args = parser.parse_args()
    import torch
    from scipy.stats import spearmanr

    sys.path.insert(0, str(ROOT / "experiments"))
    from gennape_protocol import column, lean_model, load_family, predict
    from predictors.lightning_module import from_pretrained_module

    torch.set_num_threads(1)
    groups101, depth101, y101 = zip(*nb101_cells())
    depth101, y101 = np.array(depth101), np.array(y101)
    lines = ["# How accuracy follows a cell's wiring: NB-101 vs NB-201", "", f"Command: `{COMMAND} --checkpoints "
             f"{' '.join(args.checkpoints)}`  ", __doc__.split("\n\n")[2].replace("\n", " "), "",
             "| benchmark | cells | groups of equal operator counts | SRCC(accuracy, conv depth) inside groups | over all cells |",
             "|---|---|---|---|---|"]
    lines.append(f"| NB-101 (>= 80 %) | {len(y101)} | {len(set(groups101))} | {within_groups(groups101, depth101, y101):.3f} "
                 f"| {spearmanr(depth101, y101)[0]:.3f} |")
    # the 4,096 cells without `none` are a subset of NB-201: one load, one prediction pass
    dataset = load_family("nb201/cifar10")
    archs = [dataset.records[int(d.index)].arch for d in dataset]
    cell_info = [nb201_cell(a) for a in archs]
    groups = np.array([repr(g) for g, _ in cell_info])  # operator counts as one hashable label per cell
    depth = np.array([d for _, d in cell_info])
    y = column(dataset, "y")
    families = {"NB-201, 4,096 without `none`": np.array(["none" not in a for a in archs]) & (depth >= 0),
                "NB-201, all": depth >= 0}  # depth -1: the output ignores the input
    for name, cells in families.items():
        lines.append(f"| {name} (input-dependent) | {cells.sum()} | {len(set(groups[cells]))} "
                     f"| {within_groups(groups[cells], depth[cells], y[cells]):.3f} | {spearmanr(depth[cells], y[cells])[0]:.3f} |")
    lines += ["", "Zero-shot NB-201 predictions of predictors pretrained on NB-101 (input-dependent cells):", "",
              "| predictor | cells | SRCC | SRCC inside groups | SRCC(prediction, conv depth) inside groups "
              "| SRCC of group means (over cells) | SRCC if each prediction were its group's mean |", "|---|---|---|---|---|---|---|"]
    for checkpoint in args.checkpoints:
        hparams = dict(from_pretrained_module(checkpoint).hparams)
        pred = predict(lean_model(checkpoint, hparams).eval(), dataset)
        label = f"{hparams['layers']} layers ({Path(checkpoint).name})"
        for name, cells in families.items():
            means = group_means(groups[cells], pred[cells])
            lines.append(f"| {label}, {name} | {cells.sum()} | {spearmanr(pred[cells], y[cells])[0]:.3f} "
                         f"| {within_groups(groups[cells], pred[cells], y[cells]):.3f} "
                         f"| {within_groups(groups[cells], pred[cells], depth[cells]):.3f} "
                         f"| {spearmanr(means, group_means(groups[cells], y[cells]))[0]:.3f} | {spearmanr(means, y[cells])[0]:.3f} |")
            print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
