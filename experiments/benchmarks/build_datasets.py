"""Benchmark: build the CG datasets of NB-101 (30,001) and NB-201 (15,625) from nothing.

    python experiments/benchmarks/build_datasets.py [--spaces nb101 nb201] [--workers 2] [--cache DIR]

Target (issue 4): both within 10 minutes on the 2-core machine, under 4 GB. Uses a fresh cache
directory (a temporary one unless --cache is given), so nothing is reused.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["nb101", "nb201"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "build_datasets.md")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="cgpredict-cache-"))
    os.environ["CGPREDICT_CACHE"] = str(cache)

    import torch

    torch.set_num_threads(1)
    from bench_data.datasets import space_graphs

    rows, start_all = [], time.perf_counter()
    for space in args.spaces:
        start = time.perf_counter()
        graphs, records = space_graphs(space, workers=args.workers)
        seconds = time.perf_counter() - start
        nodes = sum(int(g.num_nodes) for g in graphs) / len(graphs)
        rows.append((space, len(graphs), nodes, seconds))
        print(f"{space}: {len(graphs)} CGs (mean {nodes:.0f} nodes) in {seconds:.0f} s", flush=True)
    total = time.perf_counter() - start_all
    main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = [
        "# CG dataset build time",
        "",
        f"Command: `python experiments/benchmarks/build_datasets.py --spaces {' '.join(args.spaces)} --workers {args.workers}`  ",
        f"Machine: {os.cpu_count()} cores, python {platform.python_version()}; fresh cache, fast path (direct ONNX emitters).",
        "",
        "| space | CGs | mean nodes | seconds |",
        "|---|---|---|---|",
        *(f"| {s} | {n} | {k:.0f} | {t:.0f} |" for s, n, k, t in rows),
        f"| **total** | {sum(r[1] for r in rows)} | | **{total:.0f}** (target <= 600) |",
        "",
        f"Peak memory: main process {main_mb:.0f} MB, largest worker {worker_mb:.0f} MB (target < 4 GB).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
