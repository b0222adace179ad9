"""Benchmark: batched scoring throughput and the cold-start time of ``predict``.

    python experiments/benchmarks/inference_speed.py [--checkpoint default] [--graphs 4096]

Targets: >= 2,000 NB-201-sized graphs per second (issues 5, 6); ``predict`` on a ResNet-50-sized
ONNX file, cold start included, within 2.5x of ``python -c "import torch, onnx"``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.benchmarks.timing import best_of  # noqa: E402


def wall(cmd: list[str], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--graphs", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "inference_speed.md")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import onnx

    from bench_data import registry
    from graph_encoders.lean import MAX_BATCH_NODES, collate, node_budget_batches
    from predictors.api import Predictor
    from tests.zoo import resnet50
    from graph_encoders import export_torch

    predictor = Predictor.from_pretrained(args.checkpoint)
    space = registry.get_space("nb201")
    records = registry.load_records("nb201")
    graphs = [space.to_cg(r.arch) for r in records[:256]]
    graphs = (graphs * (args.graphs // len(graphs) + 1))[:args.graphs]

    start = time.perf_counter()
    batches = [collate(chunk) for chunk in node_budget_batches(graphs)]
    collate_s = time.perf_counter() - start
    with torch.no_grad():
        predictor.model(batches[0])
        forward_s = best_of(3, lambda: [predictor.model(batch) for batch in batches])
    api_s = best_of(3, lambda: predictor.predict(graphs))
    # a predictor fine-tuned on 50 labels: blended (the default) it runs the pretrained network too
    labels = [r.targets["cifar10"] for r in records[:50]]
    tuned = {blend: predictor.finetune(graphs[:50], labels, recalibrate=False, blend=blend) for blend in (True, False)}
    tuned_s = {blend: best_of(3, lambda p=p: p.predict(graphs)) for blend, p in tuned.items()}

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        path = Path(tmp) / "resnet50.onnx"
        onnx.save(export_torch(resnet50().eval(), torch.randn(1, 3, 224, 224)), path)
        imports = wall([sys.executable, "-c", "import torch, onnx"])
        cold = wall([sys.executable, "-m", "predictors.cli", str(path), "--checkpoint", args.checkpoint])

    n = len(graphs)
    lines = [
        "# Inference speed",
        "",
        f"Command: `python experiments/benchmarks/inference_speed.py --checkpoint {args.checkpoint} --graphs {args.graphs}`  ",
        f"1 torch thread; NB-201 CGs ({np.mean([g.num_nodes for g in graphs]):.0f} nodes on average), batches of at most {MAX_BATCH_NODES:,} nodes "
        f"({len(graphs) // len(batches)} graphs); best of 3 runs.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| GNN forward on pre-built batches | {n / forward_s:,.0f} graphs/s | |",
        f"| collate + forward (`Predictor.predict` on CGs) | {n / api_s:,.0f} graphs/s | >= 2,000 |",
        f"| the same, fine-tuned on 50 labels (`finetune`, blended with the pretrained network: the default) "
        f"| {n / tuned_s[True]:,.0f} graphs/s | |",
        f"| the same, fine-tuned alone (`finetune(..., blend=False)`) | {n / tuned_s[False]:,.0f} graphs/s | |",
        f"| collate alone, first time (node features computed and cached) | {n / collate_s:,.0f} graphs/s | |",
        f"| `python -c \"import torch, onnx\"` | {imports:.2f} s | |",
        f"| `predict resnet50.onnx` cold (load, parse 100 MB, predict) | {cold:.2f} s = {cold / imports:.2f}x | <= 2.5x |",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
