"""Label transforms, invertible, with statistics fitted on the training family only.

``flops`` (GENNAPE's T): y = z-score( A / (log10(GFLOPs + 1) + 1) ). It injects a FLOPs prior:
bigger networks need a higher accuracy to get the same transformed label, which is what lifted
GENNAPE's zero-shot transfer. ``size``: y = z-score( A - h(log10 FLOPs) ), h the non-decreasing
(isotonic) fit of accuracy on log FLOPs over the training labels: the same prior with its shape
learned instead of fixed, as an offset rather than a divisor; the network learns what size does not
explain. ``zscore``: y = z-score(A). ``none``: identity.
"""
from __future__ import annotations

import torch
from torch import nn

# h is stored at SIZE_KNOTS evenly spaced log-FLOPs points: fixed-size buffers, part of the checkpoint format
from .size_prior import LEGACY_TAIL_WINDOW, SIZE_KNOTS, TAIL_WINDOW, SizePrior, tail_slope

KINDS = ("flops", "size", "zscore", "none")


class LabelTransform(nn.Module):
    """``forward(y, macs)`` maps labels to the model's scale; ``inverse`` maps predictions back.

    The statistics are buffers, so they travel inside every checkpoint.
    """

    def __init__(self, kind: str = "flops"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"label transform must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.register_buffer("mean", torch.tensor(0.0))
        self.register_buffer("std", torch.tensor(1.0))
        if kind == "size":  # only here, so checkpoints of the other kinds keep their state dict
            self.register_buffer("knots", torch.linspace(0.0, 1.0, SIZE_KNOTS))
            self.register_buffer("size_effect", torch.zeros(SIZE_KNOTS))
            self.register_buffer("tail_window", torch.tensor(TAIL_WINDOW))  # the fit's, once fitted

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.kind == "size" and prefix + "knots" in state_dict:  # saved before the window was stored
            state_dict.setdefault(prefix + "tail_window", torch.tensor(LEGACY_TAIL_WINDOW))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _divisor(self, macs: torch.Tensor) -> torch.Tensor:
        if self.kind != "flops":
            return torch.ones_like(macs)
        return torch.log10(macs / 1e9 + 1.0) + 1.0

    def _offset(self, macs: torch.Tensor) -> torch.Tensor:
        """h(log10 FLOPs) (0 unless ``size``), extended beyond the knots as ``SizePrior.predict`` is:
        flat above them (accuracy saturates), falling below them along the slope of their low end.
        Held flat there, every network smaller than the training family's smallest got the same size
        effect: NB-201's smaller third, all ranked by the network's residual alone."""
        if self.kind != "size":
            return torch.zeros_like(macs)
        x = torch.log10(macs.to(self.knots.dtype) + 1.0)
        slope = tail_slope(self.knots, self.size_effect, self.tail_window)
        return self._between_knots(x) + (x - self.knots[0]).clamp_max(0.0) * slope

    def _between_knots(self, x: torch.Tensor) -> torch.Tensor:
        right = torch.searchsorted(self.knots, x).clamp(1, SIZE_KNOTS - 1)
        x0, x1 = self.knots[right - 1], self.knots[right]
        w = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
        return self.size_effect[right - 1] + w * (self.size_effect[right] - self.size_effect[right - 1])

    def _fit_size_effect(self, y: torch.Tensor, macs: torch.Tensor) -> None:
        prior = SizePrior.fit(macs.double().numpy(), y.double().numpy())
        knots, values = prior.resampled()
        self.knots.copy_(torch.from_numpy(knots))
        self.size_effect.copy_(torch.from_numpy(values))
        self.tail_window.fill_(prior.tail_window)

    def fit(self, y: torch.Tensor, macs: torch.Tensor, size_effect: str = "refit") -> "LabelTransform":
        """Statistics from labels ``y``. For ``size``, ``size_effect`` says what happens to h:
        ``refit`` on ``y``, ``keep`` the fitted one and its scale (only the mean moves, so a network's
        ranking z + h / std stays the checkpoint's), or ``drop`` it (h = 0: a plain z-score).
        Fine-tuning on a handful of labels drops it: on 50-shot NB-201 / NB-301 that trained better
        than refitting or keeping it (experiments/results/README.md, "Size-residual labels")."""
        if size_effect not in ("refit", "keep", "drop"):
            raise ValueError(f"size_effect must be refit, keep or drop, got {size_effect!r}")
        if self.kind == "size" and size_effect == "refit":
            self._fit_size_effect(y.detach().cpu(), macs.detach().cpu())
        elif self.kind == "size" and size_effect == "drop":
            self.size_effect.zero_()
        if self.kind != "none":
            raw = y / self._divisor(macs) - self._offset(macs)
            self.mean.fill_(float(raw.mean()))
            if not (self.kind == "size" and size_effect == "keep"):
                self.std.fill_(float(raw.std().clamp_min(1e-8)))
        return self

    def forward(self, y: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        return (y / self._divisor(macs) - self._offset(macs) - self.mean) / self.std

    def ranking_score(self, z: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        """``z`` on a scale that ranks like the label: ``size`` adds h / std back (its network predicts
        only what size does not explain); the other kinds return ``z`` as it is."""
        return z + self._offset(macs) / self.std

    def inverse(self, z: torch.Tensor, macs: torch.Tensor) -> torch.Tensor:
        return (z * self.std + self.mean + self._offset(macs)) * self._divisor(macs)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, mean={float(self.mean):.4g}, std={float(self.std):.4g}"
