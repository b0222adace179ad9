"""How close to the measurement can any latency predictor get on HELP's NB-201 data?

    python experiments/latency_noise.py

NB-201 holds near-twins: two cells that differ only in one edge, ``none`` in one and
``skip_connect`` in the other. Both run the same convolutions; one adds an ``x * 0``, the other an
identity (18,750 such pairs). Their measured latencies should agree up to a small, systematic
offset, so the spread of the log ratio around its median bounds the measurement noise: if a
single measurement has noise sigma, the ratio of two has sigma * sqrt(2). With that sigma, the
share of measurements within +-10 % of the true latency is the ceiling on the share of
*predictions* within +-10 % (the measure nn-Meter and HELP report), whatever the predictor.
The spread is a robust one (1.4826 x the median absolute deviation) and the log noise is taken
as normal: the real difference between the twins also varies a little (overstating the noise),
while outliers beyond the normal tails (gold_6226: sigma 0.018, yet 17 % of twins more than 10 %
apart) lower the true ceiling further. The twins' own share within +-10 % of each other is
reported beside it. Writes experiments/results/latency_noise.md.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "experiments" / "results" / "latency_noise.md"


def twin_pairs(archs: list[str]) -> np.ndarray:
    """(pairs, 2) indices of cells equal but for one edge: ``none`` in the first, ``skip_connect`` in the second."""
    index = {arch: i for i, arch in enumerate(archs)}
    pairs = []
    for i, arch in enumerate(archs):
        parts = arch.split("none")
        for k in range(1, len(parts)):
            twin = "none".join(parts[:k]) + "skip_connect" + "none".join(parts[k:])
            if twin in index:
                pairs.append((i, index[twin]))
    return np.array(pairs)


def ceiling(log_ratio: np.ndarray, tolerance: float = 0.10) -> tuple[float, float]:
    """(noise sigma of one measurement in log units, share of one measurement within +-tolerance of the truth)."""
    from scipy.stats import median_abs_deviation

    sigma = float(median_abs_deviation(log_ratio, scale="normal")) / math.sqrt(2)
    if sigma == 0:
        return 0.0, 1.0
    noise = NormalDist(0.0, sigma)  # of one measurement's log
    return sigma, noise.cdf(math.log(1 + tolerance)) - noise.cdf(math.log(1 - tolerance))


def main() -> None:
    from bench_data import registry

    records = registry.load_records("nb201")
    pairs = twin_pairs([r.arch for r in records])
    devices = sorted(t.split(":", 1)[1] for t in records[0].targets if t.startswith("latency:"))
    lines = ["# Measurement noise in HELP's NB-201 latencies, and the +-10 % ceiling it sets", "",
             "Command: `python experiments/latency_noise.py`  ",
             f"{len(pairs):,} pairs of NB-201 cells equal but for one edge (`none` vs `skip_connect`). "
             "sigma: noise of one measurement (log units) from the robust spread of the pairs' log ratios; "
             "ceiling: the share of measurements within +-10 % of the true latency at that noise, the most "
             "any predictor can put within +-10 % of the measured values. nn-Meter's bar is 99 %.", "",
             "| device | pairs within +-10 % of each other | noise sigma | ceiling within +-10 % |", "|---|---|---|---|"]
    for device in devices:
        latency = np.array([r.targets.get(f"latency:{device}", np.nan) for r in records])
        ratio = latency[pairs[:, 0]] / latency[pairs[:, 1]]
        log_ratio = np.log(ratio[np.isfinite(ratio) & (ratio > 0)])
        sigma, share = ceiling(log_ratio)
        close = np.mean(np.abs(log_ratio - np.median(log_ratio)) <= math.log(1.1))
        lines.append(f"| {device} | {close:.2f} | {sigma:.3f} | {share:.2f} |")
        print(lines[-1], flush=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
