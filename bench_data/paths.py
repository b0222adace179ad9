"""Where the benchmark label files live.

The data root is, in order: an explicit argument, the ``CGPREDICT_DATA_ROOT`` environment
variable, or ``../shared/bench_data/raw`` beside the checkout when it exists.
Nothing is ever downloaded: a missing file is an error that says where to get it.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CGPREDICT_DATA_ROOT"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_DEFAULT_CANDIDATES = (_REPO_ROOT.parent / "shared" / "bench_data" / "raw",)

# Where each benchmark's official release can be obtained (named in error messages).
OFFICIAL_SOURCES = {
    "nb101_nasbench_vis": "NAS-Bench-101: github.com/google-research/nasbench (nasbench_only108.tfrecord)",
    "nb201_nats_landscape": "NAS-Bench-201 / NATS-Bench: github.com/D-X-Y/NATS-Bench (NATS-tss-v1_0-3ffb9-simple)",
    "nb201_naswot": "NASWOT scores: github.com/BayesWatch/nas-without-training (results/arch_score_acc.pd)",
    "naslib_zc": "NASLib zero-cost benchmarks: github.com/automl/NASLib (naslib/data/zc_*.json)",
    "help_latency": "HELP latency data: github.com/HayeonLee/HELP (data/)",
    "enas_macro_dvae": "ENAS macro space: github.com/muhanzhang/D-VAE (data/final_structures6.txt)",
}


class MissingBenchmarkFile(FileNotFoundError):
    """A label file is absent; the message says which and where to get it."""


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root in force, or None when no candidate exists."""
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    for candidate in _DEFAULT_CANDIDATES:
        if candidate.is_dir():
            return candidate
    return None


def benchmark_file(relative: str, root: str | os.PathLike | None = None) -> Path:
    """Absolute path of ``relative`` under the data root; raises MissingBenchmarkFile if absent."""
    base = data_root(root)
    path = (base / relative) if base is not None else Path(relative)
    if not path.is_file():
        source = OFFICIAL_SOURCES.get(Path(relative).parts[0], "see bench_data/paths.py")
        where = f"under {base}" if base is not None else f"(no data root: set {ENV_VAR})"
        raise MissingBenchmarkFile(f"{path}: benchmark file missing {where}; obtain it from {source}")
    return path
