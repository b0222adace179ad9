"""Tests of the NB-301, TransNAS-Bench-101, ENAS, FBNet and OFA-MobileNetV3 spaces.

Parameter counts must equal the benchmark's stored counts exactly (NB-301 and TNB-101 store
one); the other spaces are checked against counts derived by hand from the reference block
definitions. Label tests skip with the MissingBenchmarkFile message when data is absent.
ImageNet-size nets are only run at small resolution to keep the file fast.
"""
from __future__ import annotations

import pytest
import torch

from bench_data.paths import MissingBenchmarkFile, data_root
from bench_data.spaces.base import count_parameters
from bench_data.spaces.darts import DartsSpace
from bench_data.spaces.enas import EnasMacroSpace
from bench_data.spaces.fbnet import FBNetSpace, fbnet_block
from bench_data.spaces.ofa_mbv3 import OFAMobileNetV3Space
from bench_data.spaces.transnas import (TASKS, TransNASMacroSpace, TransNASMicroSpace,
                                        macro_string, micro_string)

torch.set_num_threads(1)

_CACHE: dict = {}


def records(space, **kwargs):
    """The space's labelled records, loaded once; skip when the data is not available."""
    key = (type(space).__name__, getattr(space, "task", None), tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        if data_root() is None:
            pytest.skip("no benchmark data root: set CGPREDICT_DATA_ROOT or add ../shared/bench_data/raw")
        try:
            _CACHE[key] = space.load_records(**kwargs)
        except MissingBenchmarkFile as err:
            pytest.skip(str(err))
    return _CACHE[key]


def spread(items, n):
    """``n`` items evenly spread over ``items`` (deterministic subset)."""
    step = max(1, len(items) // n)
    return items[::step][:n]


def forward(model, *shape):
    with torch.no_grad():
        return model.eval()(torch.randn(*shape))


# --------------------------------------------------------------------------- NB-301 / DARTS

DARTS_EXAMPLE = (((0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)),
                 ((1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)))


def test_darts_forward_shape_and_key():
    space = DartsSpace()
    assert forward(space.build(DARTS_EXAMPLE), 2, 3, 32, 32).shape == (2, 10)
    # NASLib's string form and list form build the same net; the two inputs of a node commute.
    assert count_parameters(space.build(str(DARTS_EXAMPLE))) == count_parameters(space.build(DARTS_EXAMPLE))
    swapped = tuple(tuple(c[1::-1] + c[2:]) for c in DARTS_EXAMPLE)
    assert space.canonical_key(swapped) == space.canonical_key(DARTS_EXAMPLE)
    with pytest.raises(ValueError):
        space.build(((0, 0),) * 8)


def test_darts_param_counts_match_nb301():
    space = DartsSpace()
    recs = records(space)
    for rec in spread(recs, 80):
        assert count_parameters(space.build(rec.arch)) == rec.stored_params, rec.arch
    # DARTS's own training net has affine BN in the cell ops: strictly more parameters.
    assert count_parameters(DartsSpace(cell_affine=True).build(recs[0].arch)) > recs[0].stored_params


def test_darts_labels():
    recs = records(DartsSpace())
    assert len(recs) == 725
    accs = [r.targets["cifar10"] for r in recs]
    assert 91.0 < min(accs) and max(accs) < 95.0
    for name in ("zc:jacov", "zc:nwot", "zc:synflow", "zc:snip", "zc:flops", "zc:params"):
        assert all(name in r.targets for r in recs), name
    assert all(isinstance(r.stored_params, int) and 3e5 < r.stored_params < 2e6 for r in recs)


# --------------------------------------------------------------------------- TransNAS-Bench-101

def test_transnas_strings():
    assert micro_string((1, 0, 0, 2, 1, 0)) == "64-41414-1_00_210"
    assert macro_string((1, 2, 4, 2, 0, 0)) == "64-1242-basic"
    micro = TransNASMicroSpace("class_scene")
    assert (count_parameters(micro.build((3, 3, 3, 3, 3, 3)))
            == count_parameters(micro.build("64-41414-3_33_333")))


@pytest.mark.parametrize("space_cls", [TransNASMicroSpace, TransNASMacroSpace])
@pytest.mark.parametrize("task", TASKS)
def test_transnas_param_counts_match(space_cls, task):
    space = space_cls(task)
    recs = records(space)
    n = 20 if task == "class_scene" else 3  # dense decoders are slow to initialise
    for rec in spread(recs, n):
        assert count_parameters(space.build(rec.arch)) == rec.stored_params, (task, rec.arch)


def test_transnas_forward_shapes():
    arch = (1, 0, 0, 2, 1, 0)
    assert forward(TransNASMicroSpace("class_scene").build(arch), 1, 3, 64, 64).shape == (1, 63)
    assert forward(TransNASMicroSpace("jigsaw").build(arch), 1, 9, 3, 32, 32).shape == (1, 1000)
    assert forward(TransNASMicroSpace("room_layout", with_decoder=False).build(arch),
                   1, 3, 64, 64).shape == (1, 512, 2, 2)
    # Dense decoders upsample back to the input resolution.
    assert forward(TransNASMicroSpace("segmentsemantic").build(arch), 1, 3, 64, 64).shape == (1, 17, 64, 64)
    assert forward(TransNASMacroSpace("autoencoder").build((1, 2, 4, 2, 0, 0)),
                   1, 3, 32, 32).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("space_cls", [TransNASMicroSpace, TransNASMacroSpace])
def test_transnas_labels(space_cls):
    expected = {  # task -> (lower, upper) of the validation metric
        "class_scene": (0, 100), "class_object": (0, 100), "jigsaw": (0, 100),
        "segmentsemantic": (0, 100), "autoencoder": (0, 1), "normal": (0, 1),
        "room_layout": (-2, 0),
    }
    space = space_cls()
    for task, (lo, hi) in expected.items():
        recs = records(space, task=task)
        assert 600 < len(recs) <= 725
        assert all(lo <= r.targets[task] <= hi for r in recs), task
        assert all("zc:nwot" in r.targets for r in recs)
        assert not any(v == -1e8 for r in recs for v in r.targets.values())  # failure sentinel


# --------------------------------------------------------------------------- ENAS macro

ENAS_EXAMPLE = ((1,), (4, 0), (5, 0, 0), (0, 1, 1, 1), (2, 1, 1, 1, 1), (3, 0, 0, 0, 0, 1))


def test_enas_hand_count_and_shapes():
    plain = tuple((0,) + (0,) * i for i in range(6))  # six conv3x3 layers, no skips
    # stem 1044 + 6 x conv3x3 branch 13104 + 5 merge-BN 72 + 8 reductions 1368 + fc 360
    assert count_parameters(EnasMacroSpace().build(plain)) == 1044 + 6 * 13104 + 5 * 72 + 8 * 1368 + 360
    for mode in ("sum", "concat"):
        assert forward(EnasMacroSpace(skip_mode=mode).build(ENAS_EXAMPLE), 2, 3, 32, 32).shape == (2, 10)
    with pytest.raises(ValueError):
        EnasMacroSpace().build(ENAS_EXAMPLE[:5])


def test_enas_labels():
    recs = records(EnasMacroSpace())
    assert len(recs) == 20020
    assert recs[0].arch == ENAS_EXAMPLE
    accs = [r.targets["ws_val_acc"] for r in recs]
    assert 0.69 < min(accs) and max(accs) < 0.76
    assert len({r.arch for r in recs}) == 20015  # D-VAE's file repeats 5 archs


# --------------------------------------------------------------------------- FBNet (HW-NAS-Bench)

def test_fbnet_hand_counts_and_shape():
    # grouped k3_e1_g2 16->16: 1x1 (16*16/2 + BN) + dw 3x3 (16*9 + BN) + 1x1 (128 + BN)
    assert count_parameters(fbnet_block("k3_e1_g2", 16, 16, 1)) == 160 + 176 + 160
    assert count_parameters(fbnet_block("k5_e6", 24, 32, 2)) == 3744 + 3888 + 4672
    # all-skip net: stem, five projecting skips, 1984-wide head, 1000-way classifier
    assert count_parameters(FBNetSpace().build(("skip",) * 22)) == 2_785_080
    assert forward(FBNetSpace().build(("k5_e6",) * 22), 1, 3, 64, 64).shape == (1, 1000)


def test_fbnet_labels():
    space = FBNetSpace()
    recs = records(space)
    assert len(recs) == 5000
    assert all(len(r.targets) == 27 and all(v > 0 for v in r.targets.values()) for r in recs)
    assert "latency:pixel3" in recs[0].targets
    assert 2e6 < count_parameters(space.build(recs[0].arch)) < 8e6


# --------------------------------------------------------------------------- OFA-MobileNetV3

def test_ofa_counts_and_shape():
    space = OFAMobileNetV3Space()
    largest = space.build(((7,) * 20, (6,) * 20, (4,) * 5, 224))
    assert count_parameters(largest) == 7_664_760  # = the full supernet, "7.7M" in OFA
    smallest = space.build(((3,) * 20, (3,) * 20, (2,) * 5, 128))
    assert count_parameters(smallest) < count_parameters(largest)
    assert forward(smallest, 1, 3, 64, 64).shape == (1, 1000)


def test_ofa_labels_and_canonical_key():
    space = OFAMobileNetV3Space()
    recs = records(space)
    assert len(recs) == 5000
    assert all(len(r.targets) == 12 and all(v > 0 for v in r.targets.values()) for r in recs)
    assert {r.arch[3] for r in recs} <= set(range(128, 225, 4))
    ks, e, d, r = recs[0].arch
    key = space.canonical_key(recs[0].arch)
    # unused slots are ignored: changing them changes neither the key nor the net
    other = (tuple(7 if i % 4 >= d[i // 4] else k for i, k in enumerate(ks)), e, d, r)
    assert space.canonical_key(other) == key
    assert count_parameters(space.build(other)) == count_parameters(space.build(recs[0].arch))
    assert space.arch_input_shape(recs[0].arch) == (3, r, r)


def test_ofa_networks_are_exported_at_their_own_resolution():
    """HELP measured each OFA subnet at its resolution r: the CG's FLOPs must follow r (params not)."""
    space = OFAMobileNetV3Space()
    ks, e, d = (5,) * 20, (4,) * 20, (3,) * 5
    small, large = space.to_cg((ks, e, d, 128)), space.to_cg((ks, e, d, 224))
    assert small.params == large.params
    assert large.macs / small.macs == pytest.approx((224 / 128) ** 2, rel=0.1)
