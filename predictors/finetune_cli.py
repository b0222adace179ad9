"""``predict finetune LABELS.csv --checkpoint NAME|PATH --out NEW.ckpt [--epochs N]``."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict finetune",
        description="Adapt a predictor to your own family of networks from 10-100 labelled ONNX files. "
        "LABELS.csv has the columns path,accuracy (paths relative to the CSV). Writes a checkpoint that "
        "`predict --checkpoint NEW.ckpt` uses; its accuracy scale is then your labels' scale.",
    )
    parser.add_argument("labels", type=Path, help="CSV with columns path,accuracy")
    parser.add_argument("--checkpoint", default="default", help="starting checkpoint: name or path (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the new checkpoint")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--trainable", choices=("heads", "top"), default="top",
                        help="heads only, or heads + the last GNN layer (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def finetune(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    import numpy as np

    from graph_encoders import ModelLoadError, onnx_to_cg
    from predictors.api import Predictor

    try:
        with open(args.labels, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or not {"path", "accuracy"} <= set(rows[0]):
            raise ValueError("needs the columns path,accuracy")
        base = Predictor.from_pretrained(args.checkpoint)
    except (OSError, ValueError) as err:
        print(f"error: {args.labels}: {err}", file=sys.stderr)
        return 2
    graphs, labels, failed = [], [], 0
    for row in rows:
        path = (args.labels.parent / row["path"]).resolve()
        try:
            value = float(row["accuracy"])
        except ValueError:
            print(f"error: {path}: accuracy {row['accuracy']!r} is not a number", file=sys.stderr)
            failed += 1
            continue
        try:
            graphs.append(onnx_to_cg(path, name=row["path"]))
        except ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        labels.append(value)
    try:
        tuned = base.finetune(graphs, np.array(labels), epochs=args.epochs, trainable=args.trainable, seed=args.seed,
                              source=str(args.labels), progress=True)
    except ValueError as err:
        print(f"error: {args.labels}: {err}", file=sys.stderr)
        return 2
    tuned.save(args.out)
    print(f"wrote {args.out}: fine-tuned on {len(graphs)} networks from {args.labels} ({failed} failed)")
    return 1 if failed else 0
