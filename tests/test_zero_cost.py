"""The NASWOT proxy computed from ONNX files (``predictors.zero_cost``) and ``predict --proxy``."""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch

from bench_data import registry
from predictors.metrics import srcc
from predictors.zero_cost import ProxyError, ProxyWarning, naswot, rank_ensemble

from .conftest import export
from .test_cli_convert import run_predict
from .test_predictor_api import _random_predictor
from .zoo import build

IMAGE_MODELS = ("resnet", "mobilenetv3", "mobilenetv2_silu", "inception", "vit", "unet")


@pytest.mark.parametrize("mode", ["legacy_eval", "legacy_training", "dynamo"])
def test_every_image_network_of_the_zoo_is_scored_from_any_exporter(zoo_export, mode):
    scores, image_by_image = [], set()
    for name in IMAGE_MODELS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ProxyWarning)
            scores.append(naswot(zoo_export(name, mode)))
        if any(issubclass(w.category, ProxyWarning) for w in caught):
            image_by_image.add(name)
    assert all(np.isfinite(scores)), dict(zip(IMAGE_MODELS, scores))
    assert len(set(np.round(scores, 6))) == len(scores)  # different networks, different codes
    if mode == "legacy_eval":  # only the class token's fixed batch of 1 keeps the ViT from a batched run
        assert image_by_image == {"vit"}


@pytest.mark.parametrize("name", ["resnet", "mobilenetv3", "inception"])
def test_eval_and_training_exports_of_one_network_score_alike(zoo_export, name):
    """BatchNorm folded into the conv (eval) or kept (training), weights listed in another order:
    the same network at the same initialisation."""
    assert naswot(zoo_export(name, "legacy_training")) == pytest.approx(naswot(zoo_export(name, "legacy_eval")), abs=1e-6)


def _saved_with_external_data(model: onnx.ModelProto, path):
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # onnx.save moves the tensors of the proto it is given out to the file
    onnx.save(copy, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    return path


def test_the_weights_in_the_file_are_never_read(tmp_path):
    """A CNN's trained file and a weight-less one score alike: initialisation redraws every weight."""
    model, example = build("resnet", seed=0)
    other, _ = build("resnet", seed=1)  # same network, other weights and BN statistics
    first, second = export(model, example, "legacy_eval"), export(other, example, "legacy_eval")
    score = naswot(first)
    assert naswot(second) == pytest.approx(score, abs=1e-9)
    path = _saved_with_external_data(first, tmp_path / "resnet.onnx")
    (tmp_path / "weights.bin").unlink()
    assert naswot(path) == pytest.approx(score, abs=1e-9)


def test_other_constants_are_read_where_the_file_has_them(tmp_path, zoo_export):
    """A ViT's class token and position embedding are used as stored: in memory and from a file
    with its external data alike."""
    vit = zoo_export("vit")
    path = _saved_with_external_data(vit, tmp_path / "vit.onnx")
    with pytest.warns(ProxyWarning, match="image by image"):  # its class token is expanded to a batch of 1
        assert naswot(path) == pytest.approx(naswot(vit), abs=1e-9)


def test_networks_it_cannot_score_say_why(zoo_export):
    with pytest.raises(ProxyError, match="image input"):
        naswot(zoo_export("lstm"))  # a sequence input
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    with pytest.raises(ProxyError, match="activation"):
        naswot(export(linear, torch.randn(1, 3, 8, 8), "legacy_eval"))


class _Unusual(torch.nn.Module):
    """BatchNorm1d after a Linear, a Conv1d with a bias, and a sigmoid gate on a parameter (not on
    the image's path): each once broke the rewrite."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.gate = torch.nn.Parameter(torch.randn(6, 1, 1))
        self.conv1d = torch.nn.Conv1d(6, 6, 3, padding=1)
        self.linear, self.norm = torch.nn.Linear(6 * 64, 16), torch.nn.BatchNorm1d(16)

    def forward(self, x):
        x = torch.relu(self.conv(x)) * torch.sigmoid(self.gate)
        x = torch.relu(self.conv1d(x.flatten(2)))
        return torch.relu(self.norm(self.linear(x.flatten(1))))


@pytest.mark.parametrize("mode", ["legacy_eval", "legacy_training"])
def test_normalisation_of_any_rank_and_activations_off_the_image_path(mode):
    model = _Unusual().eval()
    assert np.isfinite(naswot(export(model, torch.randn(2, 3, 8, 8), mode)))  # BatchNorm1d trains on 2+


@pytest.mark.parametrize("activation", [torch.nn.Mish, torch.nn.Softplus, torch.nn.CELU])
def test_smooth_activations_give_codes(activation):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), activation(), torch.nn.Conv2d(8, 8, 3), activation()).eval()
    for mode in ("legacy_eval", "dynamo"):
        both = naswot(export(model, torch.randn(1, 3, 8, 8), mode))
        first_only = naswot(export(model[:3], torch.randn(1, 3, 8, 8), mode))
        assert np.isfinite(both) and both != first_only  # the second layer's codes count too


def test_a_network_that_ignores_its_input_scores_minus_infinity():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.relu(self.conv(x * 0.0))

    assert naswot(export(Constant().eval(), torch.randn(1, 3, 8, 8), "legacy_eval")) == -np.inf


@pytest.fixture(scope="module")
def nb201_cells(nb201_records):
    # the 4,096 cells without `none` (where zero-cost proxies are usually compared)
    cells = [r for r in nb201_records if "none" not in r.arch]
    chosen = [cells[i] for i in np.random.default_rng(3).choice(len(cells), 80, replace=False)]
    return [registry.get_space("nb201").to_onnx(r.arch) for r in chosen], chosen


def test_it_follows_naswot_on_real_images_and_ranks_nb201(nb201_cells):
    """The score on synthetic images tracks the benchmark's NASWOT on CIFAR-10 and the real accuracy."""
    models, records = nb201_cells
    ours = [naswot(m) for m in models]
    stored = [r.targets["naswot"] for r in records]
    accuracy = [r.targets["cifar10"] for r in records]
    params = [r.stored_params for r in records]
    assert srcc(ours, stored) > 0.55  # 0.74 over all 4,096; white-noise images: about 0.5
    assert srcc(ours, accuracy) > 0.65  # 0.80 over all 4,096 (0.86 with real images)
    # what the proxy adds to a size ranking: the two together rank better than size alone
    assert srcc(rank_ensemble(params, ours), accuracy) > srcc(params, accuracy) + 0.03


def test_rank_ensemble_keeps_unscored_and_constant_networks_in_place():
    model = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    proxy = np.array([4.0, 3.0, np.nan, 1.0, -np.inf])
    ranks = rank_ensemble(model, proxy, constant=[False, False, False, True, False])
    assert ranks[2] == pytest.approx(0.6)  # no proxy: the model's percentile alone
    assert ranks[3] == 0 and ranks.argmin() == 3  # output ignores the input: last
    assert ranks[0] == pytest.approx((0.2 + 1.0) / 2)  # percentiles among 5 and among the 4 scored
    assert ranks[4] == pytest.approx((1.0 + 0.25) / 2)  # -inf: the proxy's lowest
    assert rank_ensemble(model, np.full(5, np.nan)) == pytest.approx(model * 2)  # no proxy at all
    assert len(rank_ensemble([], [])) == 0


def test_predict_proxy_adds_naswot_and_a_joint_rank(tmp_path, zoo_export):
    checkpoint = tmp_path / "random.ckpt"
    _random_predictor().save(checkpoint)
    paths = []
    for name in ("resnet", "mobilenetv3", "lstm"):
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(zoo_export(name), paths[-1])
    result = run_predict(*paths, "--checkpoint", checkpoint, "--proxy", "--json")
    assert result.returncode == 0, result.stderr  # a network without a proxy is still answered
    rows = json.loads(result.stdout)
    assert rows[0]["naswot"] == pytest.approx(naswot(paths[0]))
    assert rows[2]["naswot"] is None and "image input" in rows[2]["naswot_note"] and "accuracy" in rows[2]
    expected = rank_ensemble([r["accuracy"] for r in rows], [rows[0]["naswot"], rows[1]["naswot"], np.nan])
    assert [r["proxy_rank"] for r in rows] == pytest.approx(list(expected))
    table = run_predict(*paths, "--checkpoint", checkpoint, "--proxy")
    assert table.stdout.splitlines()[0].split()[3:5] == ["NASWOT", "rank"]
    assert "NASWOT: needs one" in table.stdout
