"""Where do the 50-shot bars sit on the curve of SRCC against the number of labelled networks?

    python experiments/label_curve.py [--checkpoint nb101] [--targets nb301/cifar10] [--shots 50 100 200 400]
                                      [--draws 3] [--workers 1]

For each number of labels, ``shot_draws.py``'s rows on the same draws (draw d is the same random
order of the target for every number of labels, so the labelled sets are nested): the fine-tuned
network alone, the blend, their mean (``Predictor.finetune``'s default), the same loop from random
weights, a random forest on the space's encoding, and the label-free parameter and FLOPs
baselines, each scored on the networks outside the draw. If the curve with every label we have
stays below a bar, no recipe for 50 labels is likely to reach it on these networks.
Writes experiments/results/label_curve.md (+ .json, .png; ``--out STEM``).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))
from shot_draws import METHODS, RESULTS, TARGETS, draw_arguments, labels_plot, run_target, summary_table  # noqa: E402


def run_point(job: tuple[str, int, argparse.Namespace]) -> dict:
    key, shots, args = job
    point = copy.copy(args)
    point.shots = shots
    return {"key": key, "shots": shots, **run_target(key, point)}


def write_results(points: list[dict], args) -> None:
    command = (f"python experiments/label_curve.py --checkpoint {args.checkpoint} --targets {' '.join(args.targets)} "
               f"--shots {' '.join(map(str, args.shots))} --draws {args.draws} --out {args.out}")
    lines = ["# SRCC against the number of labelled networks", "", f"Command: `{command}`  ",
             f"Checkpoint `{args.checkpoint}`. Mean +- std [min, max] over {args.draws} draws (nested: draw d labels the "
             "first n networks of one random order of the target), SRCC on all the networks outside the draw.", "",
             *summary_table(points, labels_column=True)]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"command": command, "points": points}, indent=1))
    labels_plot(points, METHODS, RESULTS / f"{args.out}.png", {key: bar for key, (bar, _) in TARGETS.items()})
    print("\n".join(lines))


def main() -> None:
    parser = draw_arguments(__doc__.splitlines()[0], draws=3, shots=[50, 100, 200, 400])
    parser.add_argument("--targets", nargs="+", default=["nb301/cifar10"], choices=list(TARGETS))
    parser.add_argument("--out", default="label_curve", help="results file stem in experiments/results")
    args = parser.parse_args()
    jobs = sorted(((key, shots, args) for key in args.targets for shots in args.shots), key=lambda job: -job[1])
    with ProcessPoolExecutor(args.workers) as pool:  # the most labels first, so the workers finish together
        points = list(pool.map(run_point, jobs))
    write_results(sorted(points, key=lambda p: (args.targets.index(p["key"]), p["shots"])), args)


if __name__ == "__main__":
    main()
