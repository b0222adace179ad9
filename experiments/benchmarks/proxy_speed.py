"""Benchmark: seconds per network of the NASWOT proxy (``predict --proxy``), one thread.

    python experiments/benchmarks/proxy_speed.py [--cells 20]

Times :func:`predictors.zero_cost.naswot` (graph rewrite, onnxruntime session, one forward pass of
32 images, kernel) on NB-201 and NB-301 networks (their ONNX graphs made beforehand, not timed),
the shipped example and a ResNet-50 at 224 x 224; best of 3 per network, mean over networks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.benchmarks.timing import best_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20, help="networks timed per search space")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "proxy_speed.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import onnx

    from bench_data import registry
    from graph_encoders import export_torch
    from predictors.zero_cost import naswot
    from tests.zoo import resnet50

    models = {}
    for space in ("nb201", "nb301"):
        records = registry.load_records(space, target="cifar10")
        chosen = np.random.default_rng(0).choice(len(records), args.cells, replace=False)
        models[f"{space} ({args.cells} networks)"] = [registry.get_space(space).to_onnx(records[i].arch) for i in chosen]
    models["predictors/examples/mobilenetv3_cifar.onnx"] = [onnx.load(ROOT / "predictors/examples/mobilenetv3_cifar.onnx")]
    models["ResNet-50, 224 x 224"] = [export_torch(resnet50().eval(), torch.randn(1, 3, 224, 224))]
    lines = ["# NASWOT proxy speed", "", f"Command: `python experiments/benchmarks/proxy_speed.py --cells {args.cells}`  ",
             "1 thread; best of 3 per network, mean over networks; ONNX graphs made beforehand.", "",
             "| networks | seconds per network |", "|---|---|"]
    for name, protos in models.items():
        seconds = np.mean([best_of(3, lambda m=m: naswot(m)) for m in protos])
        lines.append(f"| {name} | {seconds:.3f} |")
        print(lines[-1], flush=True)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    lines += ["", f"Peak resident memory of the whole run (the ResNet-50 dominates): {peak:.1f} GiB."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
