"""The inference path: lean encoder = torch-geometric encoder, Predictor API, checkpoint round trip."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch_geometric.data import Batch

from graph_encoders import onnx_to_cg
from graph_encoders.lean import collate, node_budget_batches
from predictors.api import Predictor, available_checkpoints, calibrate, ood_threshold
from predictors.metrics import srcc
from predictors.model import PerformancePredictor

from .zoo import ZOO


@pytest.fixture(scope="module")
def graphs(zoo_export):
    return [onnx_to_cg(zoo_export(name), name=name) for name in sorted(ZOO)]


def _random_predictor(seed=0, **kwargs) -> Predictor:
    torch.manual_seed(seed)
    hparams = dict(width=32, layers=2, n_clusters=3, head_hidden=16, **kwargs)
    model = PerformancePredictor(**hparams)
    with torch.no_grad():
        model.head.set_centers(torch.randn(3, model.embedding_dim))
        for p in model.head.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # distinct cluster heads
    model.transform.mean.fill_(30.0)
    model.transform.std.fill_(5.0)
    centers = np.random.default_rng(seed).normal(size=(4, model.embedding_dim)).astype(np.float32)
    return Predictor(model, {"a": 1.0, "b": 0.01}, {"centers": centers, "threshold": 5.0}, {"trained_on": ["test"]}, hparams)


@pytest.mark.parametrize("pooling, node_sizes", [("mean", "all"), ("sum", "all"), ("attention", "all"),
                                                  ("mean", "spatial"), ("mean", "none")])
def test_lean_encoder_matches_torch_geometric(graphs, pooling, node_sizes):
    """In inference and in fine-tuning (gradients on: the layer modules instead of the fused path)."""
    torch.manual_seed(0)
    pyg = PerformancePredictor(width=32, layers=3, pooling=pooling, node_sizes=node_sizes).eval()
    with torch.no_grad():  # layer-norm scales and shifts away from their 1 / 0 initialisation
        for p in pyg.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    lean = PerformancePredictor(width=32, layers=3, pooling=pooling, node_sizes=node_sizes, lean=True).eval()
    lean.load_state_dict(pyg.state_dict())
    batch, lean_batch = Batch.from_data_list([g.to_pyg() for g in graphs]), collate(graphs)
    expected = pyg.embed(batch).detach()
    assert torch.allclose(expected, lean.embed(lean_batch).detach(), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(expected, lean.embed(lean_batch), atol=1e-5)
        assert torch.allclose(pyg(batch), lean(lean_batch), atol=1e-5)
    assert expected.std(0).min() > 0  # different networks, different embeddings


@pytest.fixture(scope="module")
def resnet_variants():
    """CGs of a ResNet, the same ResNet twice as wide, and the first on images twice as large."""
    from graph_encoders import export_torch

    from .zoo import ResNet

    torch.manual_seed(0)
    narrow, wide = ResNet(widths=(16, 32, 64, 128)).eval(), ResNet(widths=(32, 64, 128, 256)).eval()
    exports = [export_torch(narrow, torch.randn(1, 3, 32, 32)), export_torch(wide, torch.randn(1, 3, 32, 32)),
               export_torch(narrow, torch.randn(1, 3, 64, 64))]
    return [onnx_to_cg(proto) for proto in exports]


def test_node_sizes_hide_channel_widths_or_every_size_from_the_encoder(resnet_variants):
    """An encoder reading ``spatial`` sizes tells only the larger images apart, one reading ``none``
    none of the three networks, one reading ``all`` every one (the heads' graph-level FLOPs and
    parameters aside)."""
    from graph_encoders.gnn import CGEncoder

    batch = Batch.from_data_list([g.to_pyg() for g in resnet_variants])
    differs = {}
    for node_sizes in ("all", "spatial", "none"):
        torch.manual_seed(0)
        encoder = CGEncoder(width=32, layers=2, node_sizes=node_sizes).eval()
        with torch.no_grad():
            h = encoder(batch)
        differs[node_sizes] = [not torch.allclose(h[0], h[i], atol=1e-6) for i in (1, 2)]
    assert differs == {"all": [True, True], "spatial": [False, True], "none": [False, False]}
    with pytest.raises(ValueError, match="node_sizes"):
        CGEncoder(node_sizes="channels")


@pytest.mark.skipif("nb101_spatial" not in available_checkpoints(), reason="the nb101_spatial checkpoint is not shipped")
def test_the_shipped_spatial_checkpoint_embeds_networks_of_other_widths_alike(resnet_variants):
    """Its setting survives export and loading: the GNN part of the embedding (all but the last two
    columns, log FLOPs and parameters) ignores the doubled widths, not the larger images."""
    graph_part = Predictor.from_pretrained("nb101_spatial").embed(resnet_variants)[:, :-2]
    assert np.allclose(graph_part[0], graph_part[1], atol=1e-5)
    assert not np.allclose(graph_part[0], graph_part[2], atol=1e-3)
    nb101 = Predictor.from_pretrained("nb101").embed(resnet_variants)[:, :-2]
    assert not np.allclose(nb101[0], nb101[1], atol=1e-3)


def test_lean_attention_pooling_is_stable_with_large_gates_and_empty_graphs():
    """Gates in the thousands overflow a plain softmax; a graph with no nodes pools to zeros."""
    from torch_geometric.nn.aggr import AttentionalAggregation

    from graph_encoders.lean import _LeanAttentionPool

    torch.manual_seed(0)
    lean = _LeanAttentionPool(8)
    with torch.no_grad():
        lean.gate_nn.weight.mul_(1e3)
    pyg = AttentionalAggregation(lean.gate_nn)
    h, batch = torch.randn(20, 8), torch.tensor([0] * 7 + [2] * 13)  # graph 1 is empty
    got = lean(h, batch, 3)
    assert torch.isfinite(got).all() and torch.equal(got[1], torch.zeros(8))
    assert torch.allclose(got, pyg(h, batch, dim_size=3), atol=1e-5)


def test_node_budget_batches_cover_every_graph_in_order_within_the_budget(graphs):
    budget = max(g.num_nodes for g in graphs)
    batches = list(node_budget_batches(graphs, max_graphs=3, max_nodes=budget))
    assert [g for batch in batches for g in batch] == graphs
    assert all(len(batch) <= 3 and sum(g.num_nodes for g in batch) <= budget for batch in batches)
    assert len(list(node_budget_batches(graphs, max_nodes=1))) == len(graphs)  # oversized graphs go alone


@pytest.mark.parametrize("node_sizes", ["all", "spatial"])
def test_checkpoint_round_trip_and_batch_invariance(tmp_path, graphs, node_sizes):
    predictor = _random_predictor(node_sizes=node_sizes)
    path = tmp_path / "tiny.ckpt"
    predictor.save(path)
    loaded = Predictor.from_pretrained(path)
    together = loaded.predict(graphs)
    alone = [loaded.predict([g])[0] for g in graphs]
    for a, b, g in zip(together, alone, graphs):
        assert a.path == g.source and a.flops == g.macs and a.params == g.params
        assert a.score == pytest.approx(b.score, abs=1e-5) and a.accuracy == pytest.approx(b.accuracy, abs=1e-4)
        assert a.std > 0
    original = predictor.predict(graphs)
    assert [p.score for p in original] == pytest.approx([p.score for p in together], abs=1e-5)


def test_every_input_form(tmp_path, zoo_export):
    from .zoo import build

    predictor = _random_predictor()
    proto = zoo_export("resnet")
    path = tmp_path / "resnet.onnx"
    onnx.save(proto, path)
    model, example = build("resnet")
    scores = [predictor.predict([x], example_input=example)[0].score for x in (path, str(path), proto, model, onnx_to_cg(path))]
    assert max(scores) - min(scores) < 1e-5


def test_calibration_gives_unit_variance_and_ood_threshold():
    rng = np.random.default_rng(0)
    spread = rng.uniform(0, 2, 5000)
    residual = rng.normal(size=5000) * np.sqrt(0.5 * spread + 0.2)
    cal = calibrate(spread, residual)
    assert cal["a"] == pytest.approx(0.5, rel=0.15) and cal["b"] == pytest.approx(0.2, rel=0.2)
    assert cal["coverage_1sigma"] == pytest.approx(0.683, abs=0.02)
    embeddings = rng.normal(size=(2000, 8))
    ood = ood_threshold(embeddings, embeddings[:16])
    far = np.full((1, 8), 10.0)
    assert np.sqrt(((far - ood["centers"]) ** 2).sum(1)).min() > ood["threshold"]


def test_finetune_learns_a_family_ranking_and_leaves_the_base_unchanged(graphs):
    base = _random_predictor(seed=1)
    before = [p.score for p in base.predict(graphs)]
    labels = np.log10([g.params for g in graphs]) * 10  # a label the random model cannot know
    tuned = base.finetune(graphs, labels, epochs=150, trainable="top")
    after = tuned.predict(graphs)
    assert srcc([p.accuracy for p in after], labels) > 0.9
    assert np.mean(np.abs([p.accuracy for p in after] - labels)) < 2.0
    assert [p.score for p in base.predict(graphs)] == pytest.approx(before)  # base untouched
    assert tuned.metadata["finetune_labels"] == len(graphs)
    assert tuned.metadata["finetune_epochs"] == 150  # the full length, whatever the cross-validation scored
    assert set(tuned.metadata["finetune_cv_srcc"]) == {0, 10, 25, 50, 100, 150, "blended"}
    with pytest.raises(ValueError, match="at least 5"):
        base.finetune(graphs[:3], labels[:3])
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        base.finetune(graphs, labels, epochs=-1)


def test_a_blended_finetune_survives_a_checkpoint_round_trip(tmp_path, graphs):
    """``blend=True`` keeps the pretrained network and the labelled networks' zero-shot inputs in
    the checkpoint: a saved and reloaded predictor predicts exactly what it did. ``blend=False``
    predicts with the fine-tuned network alone, which the same seed trains identically."""
    base = _random_predictor(seed=1)
    labels = np.log10([g.params for g in graphs]) * 10
    settings = dict(epochs=20, trainable="top", recalibrate=False)
    blended, alone = base.finetune(graphs, labels, **settings), base.finetune(graphs, labels, **settings, blend=False)
    assert alone.pretrained_blend is None and alone.metadata["finetune_blend"] is None
    for a, b in zip(blended.model.state_dict().values(), alone.model.state_dict().values()):
        assert torch.equal(a, b)
    with_blend = [p.accuracy for p in blended.predict(graphs)]
    assert not np.allclose(with_blend, [p.accuracy for p in alone.predict(graphs)])
    blended.save(tmp_path / "blended.ckpt")
    reloaded = Predictor.from_pretrained(tmp_path / "blended.ckpt")
    assert [p.accuracy for p in reloaded.predict(graphs)] == pytest.approx(with_blend, rel=1e-6)
    assert [p.score for p in reloaded.predict(graphs)] == pytest.approx([p.score for p in blended.predict(graphs)], abs=1e-5)


def test_a_blended_finetune_of_a_latency_checkpoint_stores_the_shared_network_once(tmp_path, graphs):
    """Fine-tuning a checkpoint with latency heads: the heads' embedding network and the blend's
    pretrained network are the same, saved once and tied again on loading."""
    base = Predictor.from_pretrained("default")
    if not base.latency_devices:
        pytest.skip("the default checkpoint has no latency heads")
    labels = np.log10([g.params for g in graphs]) * 10
    tuned = base.finetune(graphs, labels, epochs=5, trainable="heads", recalibrate=False)
    assert tuned.pretrained_blend.model is tuned.latency_model
    tuned.save(tmp_path / "tuned.ckpt")
    assert torch.load(tmp_path / "tuned.ckpt", weights_only=False)["pretrained_blend"]["state_dict"] is None
    reloaded = Predictor.from_pretrained(tmp_path / "tuned.ckpt")
    assert reloaded.pretrained_blend.model is reloaded.latency_model
    device = base.latency_devices[0]
    before, after = (p.predict(graphs, latency_devices=[device]) for p in (tuned, reloaded))
    assert [p.accuracy for p in after] == pytest.approx([p.accuracy for p in before], rel=1e-6)
    assert [p.latency_ms[device] for p in after] == pytest.approx([p.latency_ms[device] for p in before], rel=1e-6)
    assert [p.accuracy for p in tuned.predict(graphs)] == pytest.approx([p.accuracy for p in before], rel=1e-6)


def test_cluster_head_spread_is_the_disagreement_of_its_heads():
    from predictors.heads import ClusterMixtureHead

    torch.manual_seed(0)
    head = ClusterMixtureHead(8, n_clusters=3, hidden=4)
    head.set_centers(torch.randn(3, 8))  # also makes the three MLPs identical
    h = torch.randn(16, 8)
    mixed, spread = head.predict_with_spread(h)
    assert torch.allclose(mixed, head(h)) and torch.allclose(spread, torch.zeros(16), atol=1e-10)
    with torch.no_grad():
        head.b2[1] += 2.0  # one cluster now predicts 2 higher
    mixed, spread = head.predict_with_spread(h)
    u = head.memberships(h)[:, 1]
    assert torch.allclose(spread, 4 * u * (1 - u), atol=1e-5)  # variance of a two-valued mixture


def test_finetuning_a_size_label_checkpoint_keeps_its_size_fit_only_without_training(graphs):
    """A size-label checkpoint (``label_transform: size``): a 0-epoch fine-tune keeps its FLOPs fit h
    (its ranking stays the checkpoint's); training drops h and fits a plain z-score of the labels."""
    base = _random_predictor(seed=1, label_transform="size")
    macs = torch.tensor([float(g.macs) for g in graphs])
    base.model.transform.fit(80 + 3 * torch.log10(macs + 1), macs)  # accuracy growing with size
    assert base.model.transform.size_effect.std() > 0
    labels = np.log10([g.params for g in graphs]) * 10
    kept = base.finetune(graphs, labels, epochs=0, recalibrate=False, blend=False)  # the network alone
    assert torch.equal(kept.model.transform.size_effect, base.model.transform.size_effect)
    before, after = ([p.accuracy for p in predictor.predict(graphs)] for predictor in (base, kept))
    assert srcc(after, before) == pytest.approx(1.0)
    assert abs(np.mean(after) - np.mean(labels)) < abs(np.mean(before) - np.mean(labels)) / 10  # their level
    trained = base.finetune(graphs, labels, epochs=10, trainable="top", recalibrate=False)
    assert not trained.model.transform.size_effect.any()
    assert base.model.transform.size_effect.std() > 0  # base untouched


@pytest.mark.slow
def test_a_blended_finetune_is_calibrated_for_what_it_predicts(nb201_records):
    """The uncertainty of a blended fine-tune is fitted on the cross-validated residuals of the
    blended prediction, not of the fine-tuned network alone (whose larger errors widened it: 82 %
    of NB-201 networks fell within one std, against the 68 % a calibrated normal gives). From
    ``nb101`` with 50 real NB-201 labels, on 1,000 others."""
    from bench_data import registry

    if "nb101" not in available_checkpoints():
        pytest.skip("the nb101 checkpoint is not shipped")
    space, rng = registry.get_space("nb201"), np.random.default_rng(0)
    chosen = [nb201_records[i] for i in rng.choice(len(nb201_records), 1050, replace=False)]
    graphs, y = [space.to_cg(r.arch) for r in chosen], np.array([r.targets["cifar10"] for r in chosen])
    tuned = Predictor.from_pretrained("nb101").finetune(graphs[:50], y[:50], epochs=100)
    predictions = tuned.predict(graphs[50:])
    accuracy, std = np.array([p.accuracy for p in predictions]), np.array([p.std for p in predictions])
    stated = std > 0  # networks that compute a constant are stated at chance, with no uncertainty
    within = np.mean(np.abs(y[50:] - accuracy)[stated] < std[stated])
    assert 0.62 < within < 0.78, within
    assert srcc(accuracy, y[50:]) > 0.9
