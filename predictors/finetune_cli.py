"""``predict finetune LABELS.csv --checkpoint NAME|PATH --out NEW.ckpt [--epochs N] [--no-blend]
[--target latency:DEVICE]``."""
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
        "`predict --checkpoint NEW.ckpt` uses; its accuracy scale is then your labels' scale. "
        "With --target latency:DEVICE the CSV has the columns path,latency_ms instead: 10-20 networks measured "
        "on your device teach the checkpoint's latency heads that device (`predict --target latency:DEVICE`).",
    )
    parser.add_argument("labels", type=Path, help="CSV with columns path,accuracy (or path,latency_ms)")
    parser.add_argument("--checkpoint", default="default", help="starting checkpoint: name or path (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the new checkpoint")
    parser.add_argument("--epochs", type=int, default=200,
                        help="training epochs (default: %(default)s)")
    parser.add_argument("--trainable", choices=("all", "heads", "top"), default="all",
                        help="every layer, heads only, or heads + the last GNN layer (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-blend", dest="blend", action="store_false",
                        help="accuracy labels: predict with the fine-tuned network alone (default: averaged with the "
                        "starting checkpoint's zero-shot ranking blended on the same labels, which keeps rankings that "
                        "10-20 labels of training forget; it costs a second forward pass)")
    parser.add_argument("--target", default="accuracy", metavar="accuracy|latency:DEVICE",
                        help="what the labels are (default: %(default)s)")
    return parser


def finetune(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    import numpy as np

    from graph_encoders import ModelLoadError, onnx_to_cg
    from predictors.api import Predictor

    kind, _, device = args.target.partition(":")
    if args.target != "accuracy" and (kind != "latency" or not device):
        print(f"error: --target {args.target}: expected accuracy or latency:DEVICE", file=sys.stderr)
        return 2
    column = "accuracy" if kind == "accuracy" else "latency_ms"
    try:
        with open(args.labels, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or not {"path", column} <= set(rows[0]):
            raise ValueError(f"needs the columns path,{column}")
        base = Predictor.from_pretrained(args.checkpoint)
    except (OSError, ValueError) as err:
        print(f"error: {args.labels}: {err}", file=sys.stderr)
        return 2
    graphs, labels, failed = [], [], 0
    for row in rows:
        path = (args.labels.parent / row["path"]).resolve()
        try:
            value = float(row[column])
        except ValueError:
            print(f"error: {path}: {column} {row[column]!r} is not a number", file=sys.stderr)
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
        if kind == "latency":
            tuned = base.add_latency_device(device, graphs, np.array(labels))
        else:
            tuned = base.finetune(graphs, np.array(labels), epochs=args.epochs, trainable=args.trainable, seed=args.seed,
                                  source=str(args.labels), progress=True, blend=args.blend)
    except ValueError as err:
        print(f"error: {args.labels}: {err}", file=sys.stderr)
        return 2
    tuned.save(args.out)
    what = f"latency device {device!r} learnt from" if kind == "latency" else "fine-tuned on"
    blend = tuned.metadata.get("finetune_blend") if kind == "accuracy" else None
    blended = f"; averaged with the zero-shot blend ({blend})" if blend else ""
    print(f"wrote {args.out}: {what} {len(graphs)} networks from {args.labels} ({failed} failed){blended}")
    return 1 if failed else 0
