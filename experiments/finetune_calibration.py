"""Is a fine-tuned predictor's uncertainty calibrated for what it predicts?

    python experiments/finetune_calibration.py [--checkpoint nb101] [--labels 50] [--epochs 100] [--draws 3]

Per draw, ``Predictor.finetune`` on ``--labels`` random NB-201 networks (real CIFAR-10 labels), with its
5-fold recalibration, then predictions for 1,000 other networks:
- blended (the default): the blend's accuracy with the std calibrated on the blended prediction's
  cross-validated residuals;
- blended, with the network alone's std (how session 15 first calibrated it);
- the network alone (``blend=False``).
Reports the share of networks within one and two predicted std of their label (a calibrated normal:
68 % / 95 %), the mean std, MAE (accuracy points) and SRCC. Writes experiments/results/finetune_calibration.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"
MEASURES = ("within 1 std", "within 2 std", "mean std", "MAE", "SRCC")


def measure(accuracy: np.ndarray, std: np.ndarray, y: np.ndarray) -> dict:
    from predictors.metrics import mae, srcc

    stated = std > 0  # constant networks are stated at chance, with no uncertainty
    error = np.abs(y - accuracy)[stated]
    return {"within 1 std": np.mean(error < std[stated]), "within 2 std": np.mean(error < 2 * std[stated]),
            "mean std": std[stated].mean(), "MAE": mae(accuracy[stated], y[stated]), "SRCC": srcc(accuracy, y)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="nb101")
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from bench_data import registry
    from predictors.api import Predictor

    space, records = registry.get_space("nb201"), registry.load_records("nb201")
    base = Predictor.from_pretrained(args.checkpoint)
    rows = {name: [] for name in ("blended (default)", "blended, the network alone's std", "network alone (blend=False)")}
    for draw in range(args.draws):
        chosen = np.random.default_rng(draw).choice(len(records), args.labels + 1000, replace=False)
        graphs = [space.to_cg(records[i].arch) for i in chosen]
        y = np.array([records[i].targets["cifar10"] for i in chosen])
        out = {}
        for blend in (True, False):
            tuned = base.finetune(graphs[:args.labels], y[:args.labels], epochs=args.epochs, blend=blend)
            predictions = tuned.predict(graphs[args.labels:])
            out[blend] = np.array([p.accuracy for p in predictions]), np.array([p.std for p in predictions])
        truth = y[args.labels:]
        rows["blended (default)"].append(measure(*out[True], truth))
        rows["blended, the network alone's std"].append(measure(out[True][0], out[False][1], truth))
        rows["network alone (blend=False)"].append(measure(*out[False], truth))
        print(f"draw {draw}: " + "; ".join(f"{name} {r[-1]['within 1 std']:.2f} / {r[-1]['within 2 std']:.2f}"
                                           for name, r in rows.items()), flush=True)
    command = (f"python experiments/finetune_calibration.py --checkpoint {args.checkpoint} --labels {args.labels} "
               f"--epochs {args.epochs} --draws {args.draws}")
    lines = ["# Calibration of a fine-tuned predictor's uncertainty", "", f"Command: `{command}`  ",
             f"`Predictor.finetune` on {args.labels} NB-201 networks ({args.epochs} epochs, 5-fold recalibration), "
             f"scored on 1,000 others; mean over {args.draws} draws. A calibrated normal has 68 % within one std, "
             "95 % within two.", "", "| prediction | " + " | ".join(MEASURES) + " |", "|---|" + "---|" * len(MEASURES)]
    for name, draws in rows.items():
        cells = [f"{np.mean([d[m] for d in draws]):.0%}" if m.startswith("within") else
                 f"{np.mean([d[m] for d in draws]):.3f}" for m in MEASURES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (RESULTS / "finetune_calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
