"""Accuracy-latency Pareto search on NAS-Bench-201 with measured labels as the oracle (issue 7).

    python experiments/pareto_nb201.py [--checkpoint default] [--device pixel3] [--seeds 10] [--budget 100]

Objectives: CIFAR-10 test accuracy (NB-201) and latency on ``--device`` (HELP's measurement); one
oracle query returns both. Quality of a search after n queries: the hypervolume of the measured
Pareto front over the true front's (objectives min-max normalised over all 15,625 cells; reference
point: lowest accuracy, highest latency).

Methods (same budget, seeds and mutations):
- random search;
- multi-objective regularized evolution: population 20, tournament 5 under a random weighting of
  the two normalised objectives drawn each step (ParEGO-style scalarisation);
- surrogate-guided: the multi-objective ``CGSurrogate`` (accuracy + latency at once) scores 150
  candidates (mutants of the current front and random cells) each step under a random weighting
  (accuracy mean + 0.5 std) and queries the best; refitted on all queried cells every 10 queries.
  The device is treated as unseen: the latency heads are retrained without any of its batch
  sizes, and its read-out is learnt from the queried cells' measurements only.

Writes experiments/results/pareto_nb201.{md,png}.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.search_nb201 import mutate, random_arch, to_string  # noqa: E402

RESULTS = ROOT / "experiments" / "results"


def pareto_mask(accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """True for points no other point beats on both objectives (higher accuracy, lower latency)."""
    order = np.lexsort((-accuracy, latency))  # by latency, then accuracy descending
    mask = np.zeros(len(accuracy), bool)
    best = -np.inf
    for i in order:
        if accuracy[i] > best:
            mask[i], best = True, accuracy[i]
    return mask


def hypervolume(accuracy: np.ndarray, latency: np.ndarray) -> float:
    """Area dominated by the points in the unit square (normalised accuracy up, latency down)."""
    if len(accuracy) == 0:
        return 0.0
    order = np.argsort(latency)
    lat, acc = latency[order], np.maximum.accumulate(accuracy[order])
    widths = np.diff(np.append(lat, 1.0))
    return float(np.sum(widths * acc))


class Oracle:
    def __init__(self, accuracy: dict, latency: dict, bounds: tuple):
        self.accuracy, self.latency, self.bounds = accuracy, latency, bounds
        self.queried: list[tuple] = []

    def __call__(self, ops: tuple) -> tuple[float, float]:
        key = to_string(ops)
        self.queried.append(ops)
        return self.accuracy[key], self.latency[key]

    def normalised(self) -> tuple[np.ndarray, np.ndarray]:
        (a_lo, a_hi), (l_lo, l_hi) = self.bounds
        values = np.array([(self.accuracy[key], self.latency[key]) for key in map(to_string, self.queried)])
        return (values[:, 0] - a_lo) / (a_hi - a_lo), (values[:, 1] - l_lo) / (l_hi - l_lo)

    def hypervolume_curve(self) -> np.ndarray:
        acc, lat = self.normalised()
        return np.array([hypervolume(acc[:n], lat[:n]) for n in range(1, len(acc) + 1)])


def random_search(oracle: Oracle, budget: int, rng: random.Random) -> None:
    seen = set()
    while len(oracle.queried) < budget:
        arch = random_arch(rng)
        if arch not in seen:
            seen.add(arch)
            oracle(arch)


def _scalarised(values: np.ndarray, bounds: tuple, weight: float) -> np.ndarray:
    (a_lo, a_hi), (l_lo, l_hi) = bounds
    return weight * (values[:, 0] - a_lo) / (a_hi - a_lo) - (1 - weight) * (values[:, 1] - l_lo) / (l_hi - l_lo)


def evolution(oracle: Oracle, budget: int, rng: random.Random, population_size: int = 20, sample: int = 5) -> None:
    population = [(a, oracle(a)) for a in (random_arch(rng) for _ in range(population_size))]
    while len(oracle.queried) < budget:
        contenders = rng.sample(population, sample)
        scores = _scalarised(np.array([v for _, v in contenders]), oracle.bounds, rng.random())
        child = mutate(contenders[int(np.argmax(scores))][0], rng)
        population.append((child, oracle(child)))
        population.pop(0)


def guided(oracle: Oracle, budget: int, rng: random.Random, make_surrogate, initial: int = 10,
           refit_every: int = 10, candidates: int = 150) -> None:
    labelled = {}
    for arch in (random_arch(rng) for _ in range(initial)):
        labelled[arch] = oracle(arch)
    surrogate = None
    while len(oracle.queried) < budget:
        if surrogate is None or len(oracle.queried) % refit_every == 0:
            archs = list(labelled)
            surrogate = make_surrogate().fit([to_string(a) for a in archs], np.array([labelled[a] for a in archs]))
        values = np.array(list(labelled.values()))
        front = [a for a, keep in zip(labelled, pareto_mask(values[:, 0], values[:, 1])) if keep]
        pool = {mutate(rng.choice(front), rng) for _ in range(candidates * 2 // 3)}
        pool |= {random_arch(rng) for _ in range(candidates // 3)}
        pool = [a for a in pool if a not in labelled] or [random_arch(rng)]
        mean, std = surrogate.predict([to_string(a) for a in pool], return_std=True)
        optimistic = np.c_[mean[:, 0] + 0.5 * std[:, 0], mean[:, 1]]
        child = pool[int(np.argmax(_scalarised(optimistic, oracle.bounds, rng.random())))]
        labelled[child] = oracle(child)


def checkpoint_without_device(checkpoint: str, device: str, out: Path) -> Path:
    """The checkpoint with latency heads retrained on every hardware but ``device``'s (NB-201 data)."""
    from experiments.latency_transfer import hardware
    from predictors.api import Predictor
    from predictors.latency import fit_latency_heads, latency_table

    inputs, _, _, table = latency_table(checkpoint, ["nb201"])
    devices = [d for d in table if hardware(d) != hardware(device)]
    log_ms = torch.tensor(np.log(np.stack([table[d] for d in devices], 1)), dtype=torch.float32)
    predictor = Predictor.from_pretrained(checkpoint)
    predictor.latency = fit_latency_heads(inputs, log_ms, devices)
    predictor.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from bench_data import registry
    from predictors.surrogate import CGSurrogate

    records = registry.load_records("nb201")
    accuracy = {r.arch: r.targets["cifar10"] for r in records}
    latency = {r.arch: r.targets[f"latency:{args.device}"] for r in records}
    all_acc, all_lat = np.array(list(accuracy.values())), np.array([latency[a] for a in accuracy])
    bounds = ((all_acc.min(), all_acc.max()), (all_lat.min(), all_lat.max()))
    true_front = pareto_mask(all_acc, all_lat)
    norm = ((all_acc - bounds[0][0]) / np.ptp(all_acc), (all_lat - bounds[1][0]) / np.ptp(all_lat))
    best_hv = hypervolume(norm[0][true_front], norm[1][true_front])

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoint_without_device(args.checkpoint, args.device, Path(tmp) / "without_device.ckpt")
        objectives = ("accuracy", f"latency:{args.device}_unseen")

        def make_surrogate():
            return CGSurrogate("nb201", checkpoint=str(ckpt), objectives=objectives, epochs=40, trainable="heads",
                               recalibrate=False)

        curves, fronts = {"random search": [], "multi-objective evolution": [], "surrogate-guided": []}, {}
        for seed in range(args.seeds):
            for name in curves:
                oracle, rng = Oracle(accuracy, latency, bounds), random.Random(seed)
                if name == "random search":
                    random_search(oracle, args.budget, rng)
                elif name == "multi-objective evolution":
                    evolution(oracle, args.budget, rng)
                else:
                    guided(oracle, args.budget, rng, make_surrogate)
                curve = oracle.hypervolume_curve() / best_hv
                curves[name].append(curve)
                if seed == 0:
                    fronts[name] = np.array([(accuracy[to_string(o)], latency[to_string(o)]) for o in oracle.queried])
                print(f"seed {seed} {name}: hypervolume ratio {curve[-1]:.3f} after {args.budget} queries", flush=True)
    write_results(curves, fronts, (all_acc[true_front], all_lat[true_front]), args)


def write_results(curves: dict, fronts: dict, true_front, args) -> None:
    checkpoints = [n for n in (25, 50, 100, args.budget) if n <= args.budget]
    checkpoints = sorted(set(checkpoints))
    lines = ["# Accuracy-latency Pareto search on NAS-Bench-201", "",
             f"Command: `python experiments/pareto_nb201.py --checkpoint {args.checkpoint} --device {args.device} "
             f"--seeds {args.seeds} --budget {args.budget}`  ",
             f"Objectives: CIFAR-10 test accuracy and measured latency on {args.device} (HELP). Hypervolume of the "
             f"queried cells' front over the true front's ({len(true_front[0])} cells), median over {args.seeds} seeds "
             "(min-max over seeds in brackets). The surrogate's latency heads never saw this device: its read-out is learnt "
             "from the queried cells.", "",
             "Even random cells dominate most of the normalised square, so the ratios sit near 1: the gap "
             "(1 - ratio, lower is better) is the number to compare.", "",
             "| method | " + " | ".join(f"gap after {n} queries" for n in checkpoints) + " |",
             "|---|" + "---|" * len(checkpoints)]
    for name, runs in curves.items():
        gaps = 1 - np.array(runs)
        cells = [f"{np.median(gaps[:, n - 1]):.4f} ({gaps[:, n - 1].min():.4f}-{gaps[:, n - 1].max():.4f})" for n in checkpoints]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pareto_nb201.md").write_text("\n".join(lines) + "\n")
    plot(curves, fronts, true_front, args)
    print("\n".join(lines))


def plot(curves: dict, fronts: dict, true_front, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    order = np.argsort(true_front[1])
    right.step(true_front[1][order], true_front[0][order], where="post", color="k", lw=1, label="true front")
    for name, runs in curves.items():
        runs = np.array(runs)
        steps = np.arange(1, runs.shape[1] + 1)
        left.plot(steps, np.median(runs, 0), label=name)
        left.fill_between(steps, runs.min(0), runs.max(0), alpha=0.15)
        points = fronts[name]
        mask = pareto_mask(points[:, 0], points[:, 1])
        idx = np.argsort(points[mask, 1])
        right.step(points[mask, 1][idx], points[mask, 0][idx], where="post", label=f"{name} (seed 0)")
    left.set_xlabel("oracle queries")
    left.set_ylabel("hypervolume / true front's")
    left.legend(fontsize=8)
    right.set_xlabel(f"latency on {args.device} (ms)")
    right.set_ylabel("CIFAR-10 accuracy (%)")
    right.set_ylim(max(80, true_front[0].min() - 1), true_front[0].max() + 0.5)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "pareto_nb201.png", dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
