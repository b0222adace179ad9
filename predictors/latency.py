"""Latency beside accuracy: per-device latency heads on the CG embedding and the graph's cost profile.

Latency is mostly a sum over the kernels a network launches, so beside the (accuracy-trained)
embedding the heads read a *cost profile*: per operator category, the number of nodes, their MACs
and their output elements (launch count, arithmetic, memory traffic). A shared trunk maps these to
a latency representation ``z``; each device is a linear read-out of ``z`` predicting standardised
log latency. A new device needs only its read-out, from 10-20 measured networks
(:meth:`LatencyHeads.add_device`, the HELP setting without meta-learning): the mean of a ridge
regression of their log latencies on ``z`` and of the known devices' read-outs mapped onto them,
weighted by the inverses of their leave-one-out errors.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from graph_encoders.features import cost_totals
from graph_encoders.vocabulary import CATEGORY_INDEX


def cost_profile(batch) -> torch.Tensor:
    """(graphs, 3 x categories) log1p of node count, MACs and output elements per operator category
    of everything that runs: the graph's nodes plus the folded ones (``batch.folded_cost``; a product
    with zero still executes, and so do the convolutions only it reads)."""
    totals = cost_totals(batch.x, batch.op, batch.batch, int(batch.num_graphs)) + batch.folded_cost.double()
    return torch.log1p(totals).float()


def executed_macs(data) -> float:
    """MACs of everything that runs, folded nodes included: the FLOPs a latency baseline should use."""
    n = len(CATEGORY_INDEX)
    return float(data.macs) + float(data.folded_cost[0, n:2 * n].sum())


def latency_inputs(model, batch) -> torch.Tensor:
    """What the latency heads read: the predictor's graph embedding and the cost profile."""
    return torch.cat([model.embed(batch), cost_profile(batch)], dim=1)


CLIP = 20.0  # standardised inputs beyond +-20 training standard deviations are clipped


class LatencyHeads(nn.Module):
    """Standardised inputs -> shared trunk ``z`` -> one linear read-out per device (standardised
    log milliseconds). Device names are HELP's (``pixel3``, ``1080ti_32``, ...)."""

    def __init__(self, in_dim: int, devices: list[str], hidden: int = 128, latent: int = 32):
        super().__init__()
        self.devices = list(devices)
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_std", torch.ones(in_dim))
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, latent), nn.ReLU())
        self.readout = nn.Linear(latent, len(self.devices))
        self.register_buffer("log_mean", torch.zeros(len(self.devices)))
        self.register_buffer("log_std", torch.ones(len(self.devices)))
        # 1st and 99th percentile of the measured latencies per device (log ms): predictions stay
        # within half the one and twice the other, however far from the measured networks an
        # input is (such inputs are also flagged out-of-distribution)
        self.register_buffer("log_low", torch.full((len(self.devices),), -float("inf")))
        self.register_buffer("log_high", torch.full((len(self.devices),), float("inf")))

    def latent(self, inputs: torch.Tensor) -> torch.Tensor:
        # Columns constant in training (an operator category no measured network has) have an
        # infinite std, so they read 0; the rest is clipped: a network far outside the measured
        # ones must not extrapolate the exponential of a linear read-out without bound (at 6 the
        # clip cut into real NB-201 variation once FBNet and OFA set the statistics).
        return self.trunk(((inputs - self.input_mean) / self.input_std).clamp(-CLIP, CLIP))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standardised log latency, (graphs, devices)."""
        return self.readout(self.latent(inputs))

    @torch.no_grad()
    def predict_ms(self, inputs: torch.Tensor, devices: list[str] | None = None) -> torch.Tensor:
        columns = [self.device_index(d) for d in (devices or self.devices)]
        log_ms = self(inputs)[:, columns] * self.log_std[columns] + self.log_mean[columns]
        margin = math.log(2.0)
        return torch.exp(log_ms.clamp(self.log_low[columns] - margin, self.log_high[columns] + margin))

    def device_index(self, device: str) -> int:
        if device not in self.devices:
            raise KeyError(f"unknown latency device {device!r}; this checkpoint knows: {', '.join(self.devices)}")
        return self.devices.index(device)

    @torch.no_grad()
    def add_device(self, name: str, inputs: torch.Tensor, latency_ms) -> "LatencyHeads":
        """A new device from a few measured networks; the trunk stays as trained. Its read-out is
        a weighted mean of two linear read-outs of the trunk's ``z``: a ridge regression of the
        measured log latencies (regularisation chosen by leave-one-out), and
        :meth:`_similar_devices_readout`, the known devices' read-outs mapped onto the new one
        (HELP's observation: devices rank networks alike, up to scale). Each is weighted by the
        inverse of its leave-one-out error on the measured networks, so a device like no known one
        (an accelerator among phones and GPUs) leans on its own ridge. Measured leave-one-hardware-out
        in ``experiments/results/latency_transfer.md``."""
        from sklearn.linear_model import RidgeCV

        log_ms = np.log(np.asarray(latency_ms, dtype=float))
        if len(log_ms) < 3 or not np.all(np.isfinite(log_ms)):
            raise ValueError(f"{name}: need at least 3 positive, finite latencies, got {len(log_ms)}")
        z = self.latent(inputs).double().numpy()
        mean, std = float(log_ms.mean()), float(log_ms.std()) or 1.0
        target = (log_ms - mean) / std
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 25)).fit(z, target)
        new_weight, new_bias = ridge.coef_, float(ridge.intercept_)
        similar = self._similar_devices_readout(z, target)
        if similar is not None:
            ridge_error = -float(ridge.best_score_)  # leave-one-out mean squared error at the chosen alpha
            similar_weight, similar_bias, similar_error = similar
            share = ridge_error / max(ridge_error + similar_error, 1e-12)  # inverse-error weights
            new_weight = (1 - share) * new_weight + share * similar_weight
            new_bias = (1 - share) * new_bias + share * similar_bias
        weight = torch.cat([self.readout.weight, torch.as_tensor(new_weight, dtype=torch.float32)[None]])
        bias = torch.cat([self.readout.bias, torch.tensor([new_bias], dtype=torch.float32)])
        if name in self.devices:  # re-measured: replace the read-out
            keep = [i for i, d in enumerate(self.devices) if d != name]
            weight, bias = weight[keep + [len(self.devices)]], bias[keep + [len(self.devices)]]
            self.log_mean, self.log_std = self.log_mean[keep], self.log_std[keep]
            self.log_low, self.log_high = self.log_low[keep], self.log_high[keep]
            self.devices = [self.devices[i] for i in keep]
        self.readout = nn.Linear(weight.size(1), weight.size(0))
        self.readout.weight.copy_(weight)
        self.readout.bias.copy_(bias)
        self.log_mean = torch.cat([self.log_mean, torch.tensor([mean])])
        self.log_std = torch.cat([self.log_std, torch.tensor([std])])
        # a few samples do not span the device's range: bound at a tenth / ten times theirs (the
        # clamp of predict_ms halves / doubles again), a guard against runaway extrapolation only
        spread = math.log(10.0)
        self.log_low = torch.cat([self.log_low, torch.tensor([float(log_ms.min()) - spread])])
        self.log_high = torch.cat([self.log_high, torch.tensor([float(log_ms.max()) + spread])])
        self.devices.append(name)
        return self

    def _similar_devices_readout(self, z: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float, float] | None:
        """A read-out (weight, bias) on ``z`` for standardised log latencies ``target``, and its
        leave-one-out mean squared error: each known device's read-out mapped onto the target by
        least squares (slope and intercept), averaged with weights exp(-(e - e_min) / e_min) of
        their leave-one-out mean squared errors e (a device that fits twice as badly as the best
        counts e^-1 as much). None without devices. The error is somewhat optimistic: the shares
        are chosen on the same leave-one-out errors (a soft best of the known devices)."""
        weights, biases = self.readout.weight.double().numpy(), self.readout.bias.double().numpy()
        known = z @ weights.T + biases  # (networks, devices) standardised predictions
        centred = known - known.mean(0)
        spread = (centred ** 2).sum(0)
        usable = spread > 1e-12
        if not usable.any():
            return None
        known, centred, spread = known[:, usable], centred[:, usable], spread[usable]
        slope = centred.T @ (target - target.mean()) / spread
        intercept = target.mean() - slope * known.mean(0)
        residual = target[:, None] - (known * slope + intercept)
        leverage = 1 / len(target) + centred ** 2 / spread  # hat-matrix diagonal of a straight-line fit
        loo_residual = residual / np.clip(1 - leverage, 1e-6, None)
        loo_error = (loo_residual ** 2).mean(0)
        best = max(loo_error.min(), 1e-12)
        share = np.exp(-(loo_error - best) / best)
        share /= share.sum()
        weight = (share * slope) @ weights[usable]
        bias = float(share @ (slope * biases[usable] + intercept))
        return weight, bias, float(((loo_residual @ share) ** 2).mean())

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict:
        return {"devices": self.devices, "in_dim": int(self.input_mean.numel()),
                "hidden": self.trunk[0].out_features, "latent": self.trunk[2].out_features,
                "state_dict": self.state_dict()}

    @classmethod
    def from_state(cls, state: dict) -> "LatencyHeads":
        heads = cls(state["in_dim"], state["devices"], state["hidden"], state["latent"])
        result = heads.load_state_dict(state["state_dict"], strict=False)
        # heads saved before the latency range was recorded load without it (no clamping)
        if set(result.missing_keys) - {"log_low", "log_high"} or result.unexpected_keys:
            raise RuntimeError(f"latency heads: missing {result.missing_keys}, unexpected {result.unexpected_keys}")
        return heads.eval()


def fit_latency_heads(inputs: torch.Tensor, log_ms: torch.Tensor, devices: list[str], epochs: int = 300,
                      lr: float = 3e-3, seed: int = 0, hidden: int = 128, latent: int = 32,
                      progress: bool = False) -> LatencyHeads:
    """Train on a (graphs, devices) table of log latencies with NaN where a device did not measure
    a graph (different search spaces were measured on different devices). Full batch, Adam,
    masked mean squared error on per-device standardised log latency."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    heads = LatencyHeads(inputs.size(1), devices, hidden, latent)
    measured = torch.isfinite(log_ms)
    with torch.no_grad():
        heads.input_mean.copy_(inputs.mean(0))
        std = inputs.std(0)
        heads.input_std.copy_(torch.where(std > 1e-3, std, torch.full_like(std, float("inf"))))
        for j in range(len(devices)):
            column = log_ms[measured[:, j], j]
            heads.log_mean[j], heads.log_std[j] = column.mean(), column.std().clamp_min(1e-3)
            heads.log_low[j], heads.log_high[j] = torch.quantile(column, 0.01), torch.quantile(column, 0.99)
    target = torch.where(measured, (log_ms - heads.log_mean) / heads.log_std, torch.zeros_like(log_ms))
    optimiser = torch.optim.Adam(heads.parameters(), lr=lr, weight_decay=1e-5)
    for _ in tqdm(range(epochs), desc="latency heads", disable=not progress, mininterval=2.0):
        optimiser.zero_grad()
        loss = ((heads(inputs) - target) ** 2)[measured].mean()
        loss.backward()
        optimiser.step()
    return heads.eval()


def latency_table(checkpoint: str, spaces: list[str]):
    """Latency-head inputs, FLOPs, space name and measured latencies (dict device -> array, NaN where
    unmeasured) of every HELP network of ``spaces``; ``"ofa_mbv3:2000"`` takes a space's first 2,000."""
    from torch_geometric.loader import DataLoader

    from bench_data.datasets import space_graphs
    from .api import checkpoint_path
    from .model import PerformancePredictor

    state = torch.load(checkpoint_path(checkpoint), map_location="cpu", weights_only=False)
    model = PerformancePredictor(**state["hparams"]).eval()
    model.load_state_dict(state["state_dict"], strict=False)
    inputs, macs, names, latency = [], [], [], {}
    for spec in spaces:
        space, _, limit = spec.partition(":")
        graphs, records = space_graphs(space, limit=int(limit) if limit else None)
        keep = [g for g in graphs if any(t.startswith("latency:") for t in records[int(g.index)].targets)]
        with torch.no_grad():
            inputs.append(torch.cat([latency_inputs(model, b) for b in DataLoader(keep, batch_size=1024)]))
        macs.append(np.array([executed_macs(g) for g in keep]))
        offset = sum(len(n) for n in names)
        names.append(np.array([spec] * len(keep)))
        for i, g in enumerate(keep):
            for target, value in records[int(g.index)].targets.items():
                if target.startswith("latency:") and value > 0:
                    latency.setdefault(target.split(":", 1)[1], {})[offset + i] = value
        print(f"{space}: {len(keep)} networks with latencies", flush=True)
    n = sum(len(x) for x in names)
    table = {d: np.array([v.get(i, np.nan) for i in range(n)]) for d, v in sorted(latency.items())}
    return torch.cat(inputs), np.concatenate(macs), np.concatenate(names), table


def within(pred: np.ndarray, true: np.ndarray, tolerance: float = 0.10) -> float:
    """Share of predictions within +-``tolerance`` of the measured latency (HELP's and nn-Meter's measure)."""
    return float(np.mean(np.abs(pred - true) <= tolerance * np.abs(true)))
