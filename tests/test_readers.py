"""Readers of the official NB-101 TFRecord and NB-201 / NATS-Bench release formats.

The fixtures are written here, byte for byte in the release formats: a TFRecord of JSON rows
whose ModelMetrics protobuf is encoded by a small hand-written encoder (itself checked
against the reference protobuf runtime when ``google.protobuf`` is installed), and
NB-201 / NATS-Bench dicts shaped like ``ArchResults.state_dict()``.
"""
from __future__ import annotations

import base64
import bz2
import json
import pickle
import statistics
import struct

import pytest
import torch

from bench_data.readers import (
    crc32c,
    decode_model_metrics,
    masked_crc32c,
    read_nats_tss,
    read_nb101_tfrecord,
)
from bench_data.spaces.nb101 import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, nb101_hash


# ================================================================ protobuf / TFRecord writers
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints go on the wire as 64-bit two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _double(number: int, x: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", x)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_evaluation(epoch, train_time, train_acc, val_acc, test_acc, checkpoint="") -> bytes:
    """nasbench.EvaluationData (fields 1-6 of lib/model_metrics.proto)."""
    out = b"".join(_double(n, x) for n, x in
                   enumerate((epoch, train_time, train_acc, val_acc, test_acc), start=1))
    return out + (_message(6, checkpoint.encode()) if checkpoint else b"")


def encode_model_metrics(evaluations: list[bytes], params: int, total_time: float) -> bytes:
    """nasbench.ModelMetrics: repeated EvaluationData = 1, int32 params = 2, double time = 3."""
    return (b"".join(_message(1, e) for e in evaluations)
            + _varint(2 << 3) + _varint(params) + _double(3, total_time))


def tfrecord(payloads: list[bytes]) -> bytes:
    out = bytearray()
    for data in payloads:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", masked_crc32c(length))
        out += data + struct.pack("<I", masked_crc32c(data))
    return bytes(out)


# ========================================================================== CRC / protobuf
def test_crc32c_known_vectors():
    # RFC 3720 B.4 (the vectors of TensorFlow's crc32c_test) and the CRC catalogue check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    crc = crc32c(b"foo")
    # The TFRecord mask: rotate right 15, add 0xa282ead8.
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"foo") == (rotated + 0xA282EAD8) % 2**32


def _reference_model_metrics_class():
    """ModelMetrics built by the real protobuf runtime from the schema of model_metrics.proto."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="readers_test_model_metrics.proto", package="readers_test", syntax="proto2")
    evaluation = proto.message_type.add(name="EvaluationData")
    for number, name in enumerate(("current_epoch", "training_time", "train_accuracy",
                                   "validation_accuracy", "test_accuracy"), start=1):
        evaluation.field.add(name=name, number=number, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    evaluation.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING,
                         label=F.LABEL_OPTIONAL)
    metrics = proto.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".readers_test.EvaluationData")
    metrics.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32,
                      label=F.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("readers_test.ModelMetrics"))


def test_model_metrics_codec_agrees_with_protobuf():
    ModelMetrics = _reference_model_metrics_class()
    # Our encoder -> the reference parser.
    ours = encode_model_metrics([encode_evaluation(0, 0, 0.1, 0.1, 0.1),
                                 encode_evaluation(54, 600.5, 0.8, 0.75, 0.74, "/ckpt-1")],
                                2_694_282, 1234.5)
    parsed = ModelMetrics.FromString(ours)
    assert parsed.trainable_parameters == 2_694_282 and parsed.total_time == 1234.5
    assert parsed.evaluation_data[1].validation_accuracy == 0.75
    assert parsed.evaluation_data[1].checkpoint_path == "/ckpt-1"
    # The reference serializer -> our decoder (incl. a negative int32 and an absent field).
    message = ModelMetrics(trainable_parameters=-7, total_time=2.5)
    message.evaluation_data.add(current_epoch=108, training_time=1500.25, test_accuracy=0.93)
    decoded = decode_model_metrics(message.SerializeToString())
    assert decoded["trainable_parameters"] == -7 and decoded["total_time"] == 2.5
    (evaluation,) = decoded["evaluation_data"]
    assert evaluation["current_epoch"] == 108 and evaluation["training_time"] == 1500.25
    assert evaluation["test_accuracy"] == 0.93 and evaluation["validation_accuracy"] == 0.0


# ================================================================================= NB-101
CELL_A = (((0, 1, 0), (0, 0, 1), (0, 0, 0)), (INPUT, CONV3X3, OUTPUT))
CELL_B = (((0, 1, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 0)),
          (INPUT, CONV3X3, MAXPOOL3X3, CONV1X1, OUTPUT))
CELL_C = (((0, 1, 1, 1, 0, 1, 0), (0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 1),
           (0, 0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 0, 0, 1), (0, 0, 0, 0, 0, 0, 1),
           (0, 0, 0, 0, 0, 0, 0)),
          (INPUT, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, OUTPUT))
PARAMS = {CELL_A: 227_274, CELL_B: 1_142_730, CELL_C: 5_356_682}
# (cell, epochs, final (train_time, val_acc, test_acc)), interleaved as runs may be in a file.
RUNS = [
    (CELL_A, 108, (1500.5, 0.90, 0.89)),
    (CELL_B, 4, (60.25, 0.40, 0.41)),
    (CELL_C, 108, (3000.0, 0.94, 0.93)),
    (CELL_A, 108, (1510.5, 0.91, 0.90)),
    (CELL_B, 108, (2000.0, 0.92, 0.915)),
    (CELL_A, 108, (1490.0, 0.89, 0.885)),
    (CELL_B, 108, (2010.0, 0.925, 0.92)),
]


def _nb101_row(cell, epochs, final) -> bytes:
    matrix, ops = cell
    train_time, val, test = final
    evaluations = [encode_evaluation(0, 0.0, 0.1, 0.1, 0.1),  # init, halfway: decoys
                   encode_evaluation(epochs / 2, train_time / 2, 0.5, 0.5, 0.5),
                   encode_evaluation(epochs, train_time, 0.99, val, test)]
    metrics = encode_model_metrics(evaluations, PARAMS[cell], train_time + 100)
    row = [nb101_hash(matrix, ops), epochs, "".join(str(v) for r in matrix for v in r),
           ",".join(ops), base64.b64encode(metrics).decode()]
    return json.dumps(row).encode()


@pytest.fixture
def nb101_file(tmp_path):
    path = tmp_path / "nasbench_mini.tfrecord"
    path.write_bytes(tfrecord([_nb101_row(*run) for run in RUNS]))
    return path


def test_read_nb101_tfrecord_recovers_labels(nb101_file):
    records = read_nb101_tfrecord(nb101_file, verify_crc=True, check_hash=True)
    assert [r.arch for r in records] == [CELL_A, CELL_B, CELL_C]  # order of first appearance
    assert [r.index for r in records] == [0, 1, 2]
    for record in records:
        assert record.stored_params == PARAMS[record.arch]
        expected = {}
        for epochs in (4, 108):
            finals = [f for c, e, f in RUNS if c == record.arch and e == epochs]
            if finals:
                expected[f"val_acc_{epochs}"] = 100 * statistics.fmean(f[1] for f in finals)
                expected[f"test_acc_{epochs}"] = 100 * statistics.fmean(f[2] for f in finals)
                expected[f"train_time_{epochs}"] = statistics.fmean(f[0] for f in finals)
        assert record.targets == pytest.approx(expected, rel=1e-12)
    assert records[2].targets["val_acc_108"] == pytest.approx(94.0)  # a single run, exactly
    assert "val_acc_4" in records[1].targets and "val_acc_4" not in records[0].targets


def test_nb101_truncated_tfrecord(nb101_file, tmp_path):
    data = nb101_file.read_bytes()
    for cut in (len(data) - 3, len(data) - 40, 5):  # in the crc, in the data, in a header
        short = tmp_path / f"cut{cut}.tfrecord"
        short.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.tfrecord: truncated TFRecord"):
            read_nb101_tfrecord(short)


def test_nb101_wrong_crc(nb101_file):
    data = bytearray(nb101_file.read_bytes())
    data[-1] ^= 0xFF  # the last record's data crc
    nb101_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"nasbench_mini\.tfrecord: TFRecord data crc mismatch"):
        read_nb101_tfrecord(nb101_file, verify_crc=True)
    assert len(read_nb101_tfrecord(nb101_file)) == 3  # verification is opt-in
    data[0] ^= 0x01  # the first record's length: its header crc no longer matches
    nb101_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="length crc mismatch"):
        read_nb101_tfrecord(nb101_file, verify_crc=True)


def test_nb101_malformed_rows(tmp_path):
    cases = {
        "json": b"not json",
        "shape": json.dumps(["h", 108, "0110", "input,output"]).encode(),
        "adjacency": json.dumps(["h", 108, "012", "input,output", ""]).encode(),
        "base64": json.dumps(["h", 108, "0100", "input,output", "@@@"]).encode(),
        "evaluations": json.dumps(["h", 108, "0100", "input,output", base64.b64encode(
            encode_model_metrics([encode_evaluation(0, 0, 0, 0, 0)], 5, 1.0)).decode()]).encode(),
    }
    for name, row in cases.items():
        path = tmp_path / f"{name}.tfrecord"
        path.write_bytes(tfrecord([row]))
        with pytest.raises(ValueError, match=rf"{name}\.tfrecord: NB-101 record 0: "):
            read_nb101_tfrecord(path)
    bad_hash = tmp_path / "hash.tfrecord"
    bad_hash.write_bytes(tfrecord([_nb101_row(*RUNS[0]).replace(b'"', b'"x', 1)]))
    with pytest.raises(ValueError, match="does not match its cell"):
        read_nb101_tfrecord(bad_hash, check_hash=True)
    with pytest.raises(FileNotFoundError, match="missing.tfrecord: no such file"):
        read_nb101_tfrecord(tmp_path / "missing.tfrecord")


# ================================================================================= NB-201
META_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]
SEEDS = {0: [777, 888, 999], 2: [777], 4: [777, 888]}  # evaluated archs; 1 and 3 are not
EVAL_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
             "cifar100": ("ori-test", "x-valid", "x-test"),
             "ImageNet16-120": ("ori-test", "x-valid", "x-test")}
CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def _accuracy(index, dataset, eval_set, seed) -> float:
    # Distinct, reproducible per (arch, dataset, set, seed).
    return 50 + index + list(EVAL_SETS).index(dataset) * 7.25 + len(eval_set) * 0.5 + seed / 1000


def _params(index, dataset, seed) -> float:
    # Millions, 6 decimals as the benchmark stores them; arch 4's seeds disagree on CIFAR-10.
    base = 0.1 * (index + 1) + (64 + 1) * (CLASSES[dataset] - 10) / 1e6
    return round(base + (2e-6 if (index, dataset, seed) == (4, "cifar10", 888) else 0), 6)


def _results_count(index, dataset, seed, epochs) -> dict:
    """A ResultsCount.state_dict(): last-epoch accuracies plus decoys at the epoch before."""
    accs = {}
    for eval_set in EVAL_SETS[dataset]:
        accs[f"{eval_set}@{epochs - 2}"] = 10.0  # decoy: not the final epoch
        final = _accuracy(index, dataset, eval_set, seed)
        accs[f"{eval_set}@{epochs - 1}"] = final if epochs == 200 else final - 1  # 12-ep: decoy
    return {"name": dataset, "net_state_dict": None, "params": _params(index, dataset, seed),
            "flop": 10.0, "seed": seed, "epochs": epochs, "latency": [0.01],
            "eval_names": list(EVAL_SETS[dataset]), "eval_acc1es": accs, "eval_losses": {},
            "eval_times": {}, "train_acc1es": {}, "train_losses": {}, "train_times": None,
            "arch_config": {"arch_str": META_ARCHS[index], "channel": 16, "num_cells": 5}}


def _arch_results(index, epochs) -> dict:
    """An ArchResults.state_dict() for one training schedule."""
    seeds = SEEDS[index]
    return {"arch_index": index, "arch_str": META_ARCHS[index], "clear_net_done": True,
            "dataset_seed": {d: list(seeds) for d in EVAL_SETS},
            "all_results": {(d, s): _results_count(index, d, s, epochs)
                            for d in EVAL_SETS for s in seeds}}


def _per_arch(index, nats: bool) -> dict:
    # NB-201 v1.0/v1.1 key the schedules "less"/"full"; NATS-Bench "12"/"200".
    short, full = ("12", "200") if nats else ("less", "full")
    return {short: _arch_results(index, 12), full: _arch_results(index, 200)}


def _write_pth(tmp_path):
    path = tmp_path / "NAS-Bench-201-v1_0-mini.pth"
    torch.save({"meta_archs": META_ARCHS, "evaluated_indexes": sorted(SEEDS),
                "arch2infos": {i: _per_arch(i, nats=False) for i in SEEDS}}, path)
    return path


def _pbz2(path, obj):
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def _write_nats_bundle(tmp_path):
    return _pbz2(tmp_path / "NATS-tss-v1_0-mini.pickle.pbz2",
                 {"meta_archs": META_ARCHS, "evaluated_indexes": sorted(SEEDS),
                  "arch2infos": {i: _per_arch(i, nats=True) for i in SEEDS}})


def _write_nats_simple_dir(tmp_path):
    root = tmp_path / "NATS-tss-v1_0-mini-simple"
    root.mkdir()
    _pbz2(root / "meta.pickle.pbz2", {"meta_archs": META_ARCHS, "evaluated_indexes": sorted(SEEDS)})
    for i in SEEDS:
        _pbz2(root / f"{i:06d}.pickle.pbz2", _per_arch(i, nats=True))
    return root


@pytest.mark.parametrize("writer", [_write_pth, _write_nats_bundle, _write_nats_simple_dir])
@pytest.mark.parametrize("dataset", ["cifar10", "imagenet16"])
def test_read_nats_tss_recovers_labels(tmp_path, writer, dataset):
    records = read_nats_tss(writer(tmp_path), dataset=dataset)
    assert [r.index for r in records] == [0, 2, 4]
    assert [r.arch for r in records] == [META_ARCHS[i] for i in (0, 2, 4)]
    names = {"cifar10": ("cifar10", "ori-test"), "cifar100": ("cifar100", "x-test"),
             "imagenet16": ("ImageNet16-120", "x-test"),
             "cifar10_valid": ("cifar10-valid", "x-valid")}
    for record in records:
        seeds = SEEDS[record.index]
        expected = {name: statistics.fmean(_accuracy(record.index, d, s, seed) for seed in seeds)
                    for name, (d, s) in names.items()}
        assert record.targets == pytest.approx(expected, rel=1e-12)
        official = names[dataset][0]
        mean_params = statistics.fmean(_params(record.index, official, seed) for seed in seeds)
        assert record.stored_params == round(mean_params * 1e6)
    # Arch 4's two CIFAR-10 runs stored counts 2 apart: the mean, as nb201.py documents.
    assert records[2].stored_params == (500_001 if dataset == "cifar10" else 507_150)


def test_read_nats_tss_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth: no such file"):
        read_nats_tss(tmp_path / "nope.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"list\.pth: expected a dict .* got list"):
        read_nats_tss(tmp_path / "list.pth")
    torch.save({"meta_archs": META_ARCHS}, tmp_path / "nokey.pth")
    with pytest.raises(ValueError, match=r"nokey\.pth: .*no key\(s\) \['arch2infos'\]"):
        read_nats_tss(tmp_path / "nokey.pth")
    (tmp_path / "garbage.pth").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match=r"garbage\.pth: cannot be loaded"):
        read_nats_tss(tmp_path / "garbage.pth")
    only_12 = {"meta_archs": META_ARCHS, "arch2infos": {0: {"less": _arch_results(0, 12)}}}
    torch.save(only_12, tmp_path / "less.pth")
    with pytest.raises(ValueError, match=r"less\.pth: arch 0: no 200-epoch results"):
        read_nats_tss(tmp_path / "less.pth")
    broken = _per_arch(0, nats=False)
    del broken["full"]["all_results"][("cifar100", 888)]["eval_acc1es"]["x-test@199"]
    torch.save({"meta_archs": META_ARCHS, "arch2infos": {0: broken}}, tmp_path / "broken.pth")
    message = r"broken\.pth: arch 0 cifar100 seed 888: no eval_acc1es\['x-test@199'\]"
    with pytest.raises(ValueError, match=message):
        read_nats_tss(tmp_path / "broken.pth")
    (tmp_path / "empty-simple").mkdir()
    with pytest.raises(FileNotFoundError, match="meta.pickle.pbz2: no such file"):
        read_nats_tss(tmp_path / "empty-simple")
    with pytest.raises(ValueError, match="dataset must be"):
        read_nats_tss(tmp_path / "broken.pth", dataset="ImageNet16-120")
