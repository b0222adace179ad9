"""Scale-out by configuration alone: Lightning's DDP strategy, 2 processes on CPU (gloo)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench_data.paths import data_root


@pytest.mark.slow
def test_two_process_ddp_fit_ranks_agree(tmp_path):
    if data_root() is None:
        pytest.skip("benchmark label files absent (no data root)")
    env = {**os.environ, "CGPREDICT_CACHE": str(tmp_path / "cache"), "PL_DISABLE_FORK": "1"}
    subprocess.run([sys.executable, str(Path(__file__).with_name("ddp_fit.py")), str(tmp_path)], check=True,
                   env=env, timeout=600, capture_output=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert ranks[0]["batches"] == ranks[1]["batches"] == 3  # 76 training graphs split across 2 ranks, batch 16
    assert ranks[0]["val_srcc"] == pytest.approx(ranks[1]["val_srcc"])  # all-gathered validation metric
    for key, value in ranks[0]["state"].items():
        assert torch.allclose(value, ranks[1]["state"][key], atol=1e-6), key  # gradients were synchronised
    assert not torch.equal(ranks[0]["state"]["model.head.centers"], torch.zeros_like(ranks[0]["state"]["model.head.centers"]))
