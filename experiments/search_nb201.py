"""NAS on NAS-Bench-201 with the benchmark's labels as the oracle: how many oracle queries until
the search finds a top-0.1 % architecture (CIFAR-10 test accuracy), over seeds.

    python experiments/search_nb201.py --checkpoint nb101 --seeds 10 [--budget 300]

Methods:
- random search;
- regularized evolution (Real et al. 2019): population 20, tournament 5, one-edge mutations;
- predictor-guided evolution: the same mutations, but each round scores 100 mutants of the
  population's best with the surrogate (pretrained elsewhere: the ``nb101`` checkpoint never saw
  NB-201) and queries the one with the highest mean + 0.5 std; the surrogate is refitted on
  every label gathered so far after each 10 queries.

Writes experiments/results/search_nb201.md and search_nb201.png.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = 6


def to_string(ops: tuple) -> str:
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def mutate(ops: tuple, rng: random.Random) -> tuple:
    edge = rng.randrange(EDGES)
    choices = [o for o in OPS if o != ops[edge]]
    return ops[:edge] + (rng.choice(choices),) + ops[edge + 1:]


def random_arch(rng: random.Random) -> tuple:
    return tuple(rng.choice(OPS) for _ in range(EDGES))


class Oracle:
    def __init__(self, accuracy: dict[str, float], threshold: float):
        self.accuracy, self.threshold, self.queries, self.found_at = accuracy, threshold, [], None

    def __call__(self, ops: tuple) -> float:
        value = self.accuracy[to_string(ops)]
        self.queries.append(ops)
        if self.found_at is None and value >= self.threshold:
            self.found_at = len(self.queries)
        return value


def random_search(oracle: Oracle, budget: int, rng: random.Random) -> None:
    while oracle.found_at is None and len(oracle.queries) < budget:
        oracle(random_arch(rng))


def evolution(oracle: Oracle, budget: int, rng: random.Random, population_size: int = 20, sample: int = 5) -> None:
    population = [(a, oracle(a)) for a in (random_arch(rng) for _ in range(population_size))]
    while oracle.found_at is None and len(oracle.queries) < budget:
        parent = max(rng.sample(population, sample), key=lambda p: p[1])[0]
        child = mutate(parent, rng)
        population.append((child, oracle(child)))
        population.pop(0)


def guided_evolution(oracle: Oracle, budget: int, rng: random.Random, surrogate, population_size: int = 20,
                     candidates: int = 100, refit_every: int = 10) -> None:
    population = [(a, oracle(a)) for a in (random_arch(rng) for _ in range(10))]
    seen = {a for a, _ in population}
    model = surrogate.base()
    while oracle.found_at is None and len(oracle.queries) < budget:
        if len(oracle.queries) % refit_every == 0 or model is None:
            labelled = [(a, v) for a, v in population]
            model = surrogate.refit([to_string(a) for a, _ in labelled], [v for _, v in labelled])
        parents = sorted(population, key=lambda p: -p[1])[:5]
        pool = list({mutate(rng.choice(parents)[0], rng) for _ in range(candidates)} - seen)
        if not pool:
            pool = [random_arch(rng)]
        mean, std = surrogate.score(model, [to_string(a) for a in pool])
        child = pool[int(np.argmax(mean + 0.5 * std))]
        seen.add(child)
        population.append((child, oracle(child)))


class Surrogate:
    """Scores NB-201 cells from the cached CG dataset; refits by fine-tuning on gathered labels."""

    def __init__(self, checkpoint: str, epochs: int = 40):
        from predictors.api import Predictor

        self.base_predictor = Predictor.from_pretrained(checkpoint)
        self.epochs = epochs
        from bench_data import registry

        self.space = registry.get_space("nb201")
        self.graphs: dict[str, object] = {}

    def base(self):
        return self.base_predictor

    def _cg(self, arch: str):
        if arch not in self.graphs:
            self.graphs[arch] = self.space.to_cg(arch)
        return self.graphs[arch]

    def refit(self, archs, values):
        return self.base_predictor.finetune([self._cg(a) for a in archs], values, epochs=self.epochs,
                                            trainable="heads", recalibrate=False)

    def score(self, predictor, archs):
        predictions = predictor.predict([self._cg(a) for a in archs])
        return np.array([p.accuracy for p in predictions]), np.array([p.std for p in predictions])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from bench_data import registry

    records = registry.load_records("nb201")
    accuracy = {r.arch: r.targets["cifar10"] for r in records}
    values = np.sort(np.array(list(accuracy.values())))[::-1]
    top = max(1, int(round(len(values) * 0.001)))
    threshold = values[top - 1]
    surrogate = Surrogate(args.checkpoint)
    results: dict[str, list] = {"random search": [], "regularized evolution": [], "predictor-guided evolution": []}
    for seed in range(args.seeds):
        for name in results:
            start = time.time()
            oracle, rng = Oracle(accuracy, threshold), random.Random(seed)
            if name == "random search":
                random_search(oracle, args.budget, rng)
            elif name == "regularized evolution":
                evolution(oracle, args.budget, rng)
            else:
                guided_evolution(oracle, args.budget, rng, surrogate)
            results[name].append(oracle.found_at or args.budget + 1)
            print(f"seed {seed} {name}: {oracle.found_at or f'> {args.budget}'} queries ({time.time() - start:.0f} s)", flush=True)

    out = ROOT / "experiments" / "results"
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Search on NAS-Bench-201 (CIFAR-10 test accuracy as the oracle)", "",
             f"Command: `python experiments/search_nb201.py --checkpoint {args.checkpoint} --seeds {args.seeds} --budget {args.budget}`  ",
             f"Goal: an architecture in the top 0.1 % ({top} of {len(values)}, accuracy >= {threshold:.2f} %). "
             f"Runs that did not reach it within {args.budget} queries count as {args.budget + 1}.", "",
             "| method | median queries | mean | reached within budget |", "|---|---|---|---|"]
    for name, found in results.items():
        found = np.array(found)
        lines.append(f"| {name} | {np.median(found):.0f} | {found.mean():.0f} | {int((found <= args.budget).sum())}/{len(found)} |")
    (out / "search_nb201.md").write_text("\n".join(lines) + "\n")
    _plot(results, args.budget, out / "search_nb201.png")
    print("\n".join(lines))


def _plot(results, budget, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, found in results.items():
        steps = np.arange(1, budget + 1)
        ax.plot(steps, [(np.array(found) <= s).mean() for s in steps], label=name)
    ax.set_xlabel("oracle queries")
    ax.set_ylabel("share of runs that found a top-0.1 % cell")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
