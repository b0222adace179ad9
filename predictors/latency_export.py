"""Train latency heads on every HELP device and add them to a predictor checkpoint.

    python -m predictors.latency_export --checkpoint default [--spaces nb201 fbnet ofa_mbv3] [--out PATH]

The heads read the checkpoint's frozen embedding plus the cost profile (:mod:`predictors.latency`);
the accuracy part of the checkpoint is unchanged. Without ``--out`` the checkpoint is rewritten
in place. ``predict --target latency:<device>`` and ``Predictor.predict(latency_devices=...)`` use them.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from .api import Predictor, checkpoint_path
from .latency import fit_latency_heads, latency_table, within
from .metrics import srcc


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--spaces", nargs="+", default=["nb201", "fbnet", "ofa_mbv3"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.1, help="share of networks kept out to measure the heads")
    parser.add_argument("--out", default=None, help="output checkpoint (default: rewrite --checkpoint)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    inputs, _, space_of, table = latency_table(args.checkpoint, args.spaces)
    devices = list(table)
    log_ms = torch.tensor(np.log(np.stack([table[d] for d in devices], 1)), dtype=torch.float32)
    held_out = np.random.default_rng(args.seed).random(len(inputs)) < args.holdout
    train = torch.from_numpy(~held_out)
    heads = fit_latency_heads(inputs[train], log_ms[train], devices, epochs=args.epochs, seed=args.seed, progress=True)
    with torch.no_grad():
        predicted = heads.predict_ms(inputs[~train]).numpy()
    validation = {}
    for j, device in enumerate(devices):
        measured = table[device][held_out]
        ok = np.isfinite(measured)
        validation[device] = {"srcc": round(srcc(predicted[ok, j], measured[ok]), 4),
                              "within10": round(within(predicted[ok, j], measured[ok]), 4), "networks": int(ok.sum())}
        print(f"held out, {device}: SRCC {validation[device]['srcc']:.3f}, within +-10 % {validation[device]['within10']:.2f}")
    predictor = Predictor.from_pretrained(args.checkpoint)
    predictor.latency = heads
    predictor.metadata = dict(predictor.metadata, latency={
        "data": f"HELP latency measurements of {', '.join(args.spaces)} ({len(inputs)} networks, {len(devices)} devices)",
        "command": "python -m predictors.latency_export " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed, "epochs": args.epochs,
        "networks_per_space": {s: int((space_of == s).sum()) for s in args.spaces},
        "held_out": args.holdout, "validation": validation,
    })
    out = args.out or checkpoint_path(args.checkpoint)
    predictor.save(out)
    print(f"wrote {out}: latency heads for {len(devices)} devices: {', '.join(devices)}")


if __name__ == "__main__":
    main()
