"""A FLOPs prior for zero-shot prediction on families a checkpoint never saw.

    python -m predictors.size_prior --checkpoint nb101 --config experiments/gennape_nb101.yaml

:class:`SizePrior` is accuracy as a non-decreasing function of log10 FLOPs (isotonic regression),
fitted on the training split of the checkpoint's own recipe (the config's ``data`` section); above
the FLOPs its training networks span it holds its end value, below them it keeps falling.
GENNAPE's zero-shot results are ensembles that include a FLOPs predictor; ``Predictor.predict(...,
size_prior=True)`` (``predict --size-prior``) is that ensemble with two members: the mean of the
GNN's accuracy and this prior. Measured by ``experiments/gennape_protocol.py``: with the z-score
``nb101`` of sessions 1-13 (and this prior held flat below its range, as then) zero-shot SRCC on
NB-201 0.805 -> 0.845 (4,096 without ``none``: 0.771 -> 0.852), NB-301 0.140 -> 0.369; with
today's ``nb101``, trained on size-residual labels (the same prior inside one network), 0.857 ->
0.858, 0.871 -> 0.861, 0.412 -> 0.452. In domain it costs (NB-101 held-out 0.941 -> 0.905), so it
is for families the checkpoint never saw (the OOD flag says when).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


# Below the fitted FLOPs the fit keeps falling along its slope over this fraction of their span (0:
# held flat), read off the fit resampled at SIZE_KNOTS even points. A quarter spans several isotonic
# blocks: the lowest block alone is often flat, pooled at the edge. From a tenth to a half of the
# span, NB-201 zero-shot SRCC moves by at most 0.018 (experiments/results/seed_variance_tail.md).
# New fits store it; changing it leaves saved checkpoints as they were.
TAIL_WINDOW = 0.25
# What states saved before the window was stored get: 0.25, the only window since it was introduced.
LEGACY_TAIL_WINDOW = 0.25
SIZE_KNOTS = 64


def tail_slope(knots, values, window: float):
    """Slope of ``values`` (at evenly spaced ``knots``, numpy or torch) over their lowest ``window``
    (a fraction of the span; :data:`TAIL_WINDOW` when fitted), the one rule of the size prior and of
    size-residual labels. Each stores the window it was fitted with, so a checkpoint keeps its own."""
    window = float(window)
    position = window * (len(knots) - 1)
    run = (knots[-1] - knots[0]) * window
    if window <= 0 or not run > 0:
        return 0.0 * values[0]
    i = min(int(position), len(knots) - 2)
    rise = values[i] + (position - i) * (values[i + 1] - values[i]) - values[0]
    return rise / run


class SizePrior:
    """Piecewise-linear, non-decreasing accuracy over log10(FLOPs + 1): ``fit(macs, labels)``,
    ``predict(macs)``; its breakpoints and tail window travel in the checkpoint (``to_state`` /
    ``from_state``; a state saved before the window was stored gets :data:`LEGACY_TAIL_WINDOW`)."""

    def __init__(self, log_flops=(), accuracy=(), tail_window: float | None = None):
        self.log_flops, self.accuracy = np.asarray(log_flops, dtype=float), np.asarray(accuracy, dtype=float)
        self.tail_window = TAIL_WINDOW if tail_window is None else float(tail_window)

    @classmethod
    def fit(cls, macs, labels) -> "SizePrior":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip").fit(np.log10(np.asarray(macs, dtype=float) + 1), labels)
        return cls(iso.X_thresholds_, iso.y_thresholds_)

    def resampled(self) -> tuple[np.ndarray, np.ndarray]:
        """The fit at :data:`SIZE_KNOTS` evenly spaced log-FLOPs points (what size-residual labels
        store, and where :func:`tail_slope` reads the slope)."""
        low, high = self.log_flops[0], self.log_flops[-1]
        knots = np.linspace(low, max(high, low + 1e-6), SIZE_KNOTS)
        return knots, np.interp(knots, self.log_flops, self.accuracy)

    def predict(self, macs) -> np.ndarray:
        """Linear between breakpoints; above them flat (accuracy saturates); below them falling along
        the slope of their lowest ``tail_window`` (held flat, every smaller network would tie)."""
        x = np.log10(np.asarray(macs, dtype=float) + 1)
        slope = tail_slope(*self.resampled(), self.tail_window)
        return np.interp(x, self.log_flops, self.accuracy) + np.minimum(x - self.log_flops[0], 0.0) * slope

    def to_state(self) -> dict:
        return {"log_flops": self.log_flops.tolist(), "accuracy": self.accuracy.tolist(), "tail_window": self.tail_window}

    @classmethod
    def from_state(cls, state: dict) -> "SizePrior":
        return cls(state["log_flops"], state["accuracy"], state.get("tail_window", LEGACY_TAIL_WINDOW))


def fit_on_training_split(data_config: dict):
    """A :class:`SizePrior` fitted on the training split of a recipe's ``data`` section (the split its
    checkpoint trained on), and the set-up data module (its test split measures the cost in domain)."""
    from bench_data.datamodule import BenchDataModule

    data = BenchDataModule(**data_config)
    data.setup()
    return SizePrior.fit(data.train_set.macs.numpy(), data.train_set.y.numpy()), data


def main(argv: list[str] | None = None) -> None:
    from .api import Predictor, checkpoint_path
    from .export import merged_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--config", required=True, type=Path, action="append",
                        help="the experiment YAML the checkpoint was trained with; repeat for overlays")
    parser.add_argument("--out", default=None, help="output checkpoint (default: rewrite --checkpoint)")
    args = parser.parse_args(argv)
    config = merged_config(args.config)
    prior, data = fit_on_training_split(config["data"])
    train = data.train_set
    predictor = Predictor.from_pretrained(args.checkpoint)
    predictor.size_prior = prior
    predictor.metadata = dict(predictor.metadata, size_prior={
        "data": f"training split of {', '.join(config['data']['keys'])} ({len(train)} networks)",
        "command": "python -m predictors.size_prior " + " ".join(sys.argv[1:] if argv is None else argv),
    })
    out = args.out or checkpoint_path(args.checkpoint)
    predictor.save(out)
    print(f"wrote {out}: size prior from {len(train)} networks, {len(prior.log_flops)} breakpoints")


if __name__ == "__main__":
    main()
