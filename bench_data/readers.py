"""Readers for the *official* NAS-Bench-101 and NAS-Bench-201 / NATS-Bench release files.

Our label files (:func:`bench_data.spaces.nb101.load_records`,
:func:`bench_data.spaces.nb201.load_records`) are third-party extracts. A user who already
holds the original releases can read them here instead, with no TensorFlow, no ``nasbench``
package and no ``nats_bench`` / ``nas_201_api`` package:

* :func:`read_nb101_tfrecord` -- ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``
  (google-research/nasbench). TFRecord framing and the ``ModelMetrics`` protobuf are
  decoded by hand below.
* :func:`read_nats_tss` -- NAS-Bench-201 ``NAS-Bench-201-v1_0-e61699.pth`` /
  ``NAS-Bench-201-v1_1-096897.pth`` (D-X-Y/NAS-Bench-201), the NATS-Bench topology bundle
  ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` and its ``NATS-tss-v1_0-3ffb9-simple`` directory
  (D-X-Y/NATS-Bench).

Both return :class:`~bench_data.spaces.base.ArchRecord` lists keyed exactly as the search
spaces' own loaders key them. A missing file raises ``FileNotFoundError``; a file that is not
in the expected format raises ``ValueError``; both messages start with the path.
"""
from __future__ import annotations

import base64
import bz2
import json
import math
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

from bench_data.spaces.base import ArchRecord

# =============================================================================== CRC32C
# TFRecord checksums are CRC-32C (Castagnoli), not zlib's CRC-32, so zlib.crc32 cannot be
# used. 0x82F63B78 is the Castagnoli polynomial 0x1EDC6F41 bit-reversed (LSB-first form).
_CRC32C_POLY = 0x82F63B78


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (pure Python, one table lookup per byte: ~10 MB/s)."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The checksum TFRecord stores: CRC-32C rotated right by 15 bits plus 0xa282ead8.

    (TensorFlow's ``crc32c::Mask``, from LevelDB: a CRC of data that itself embeds CRCs
    is otherwise prone to degenerate values.)
    """
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ============================================================================= TFRecord
def _read_exact(f: BinaryIO, n: int, path: Path, what: str, offset: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated TFRecord: {what} of the record at byte {offset} "
                         f"needs {n} bytes, only {len(data)} left")
    return data


def iter_tfrecord(path: str | os.PathLike, verify_crc: bool = False) -> Iterator[bytes]:
    """The payloads of a TFRecord file, read without TensorFlow.

    Framing (``tensorflow/core/lib/io/record_writer.cc``), per record: ``uint64 length``
    (little-endian), ``uint32 masked_crc32c(length bytes)``, ``length`` bytes of data,
    ``uint32 masked_crc32c(data)``. Uncompressed files only (the NB-101 releases are).
    ``verify_crc`` checks both checksums; off by default because pure-Python CRC-32C of
    the 2 GB ``nasbench_full.tfrecord`` takes minutes. The length is sanity-checked
    against the file size either way, so truncation is always detected.
    """
    path = _existing_file(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) != 12:
                raise ValueError(f"{path}: truncated TFRecord: {len(header)}-byte fragment "
                                 f"of a record header at byte {offset}")
            length, length_crc = struct.unpack("<QI", header)
            if verify_crc and masked_crc32c(header[:8]) != length_crc:
                raise ValueError(f"{path}: TFRecord length crc mismatch at byte {offset} "
                                 "(corrupt file, or not a TFRecord file)")
            if offset + 16 + length > size:
                raise ValueError(f"{path}: truncated TFRecord: the record at byte {offset} "
                                 f"declares {length} bytes but the file has {size} bytes")
            data = _read_exact(f, length, path, "data", offset)
            (data_crc,) = struct.unpack("<I", _read_exact(f, 4, path, "data crc", offset))
            if verify_crc and masked_crc32c(data) != data_crc:
                raise ValueError(f"{path}: TFRecord data crc mismatch in the record at byte "
                                 f"{offset}")
            yield data
            offset += 16 + length


# ======================================================================= protobuf wire
# Just enough of the protobuf wire format (developers.google.com/protocol-buffers/docs/encoding)
# to read nasbench's ModelMetrics without the generated model_metrics_pb2 module.
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``pos``."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:  # a varint is at most 10 bytes
            raise ValueError("malformed protobuf varint (more than 10 bytes)")


def _iter_fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of each field in a serialized message.

    Values: int for varints, ``bytes`` for length-delimited fields and for fixed32/64
    (left raw: only the schema knows whether 8 bytes are a double or an integer).
    """
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("malformed protobuf: field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire in (_FIXED64, _FIXED32, _LENGTH_DELIMITED):
            if wire == _LENGTH_DELIMITED:
                size, pos = _read_varint(buf, pos)
            else:
                size = 8 if wire == _FIXED64 else 4
            if pos + size > len(buf):
                raise ValueError(f"truncated protobuf: field {number} needs {size} bytes")
            value, pos = buf[pos:pos + size], pos + size
        else:  # 3/4 are proto2 groups, which ModelMetrics does not use; 6/7 do not exist
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        yield number, wire, value


def _as_double(number: int, wire: int, value: Any) -> float:
    if wire != _FIXED64:
        raise ValueError(f"protobuf field {number}: expected a double, got wire type {wire}")
    return struct.unpack("<d", value)[0]


def _as_int32(number: int, wire: int, value: Any) -> int:
    if wire != _VARINT:
        raise ValueError(f"protobuf field {number}: expected an int32, got wire type {wire}")
    value &= 0xFFFFFFFF  # negative int32s are sign-extended to 64 bits on the wire
    return value - (1 << 32) if value >= 1 << 31 else value


# nasbench/lib/model_metrics.proto (proto2):
#   message EvaluationData { optional double current_epoch = 1; optional double training_time = 2;
#     optional double train_accuracy = 3; optional double validation_accuracy = 4;
#     optional double test_accuracy = 5; optional string checkpoint_path = 6; }
#   message ModelMetrics { repeated EvaluationData evaluation_data = 1;
#     optional int32 trainable_parameters = 2; optional double total_time = 3; }
_EVALUATION_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                       4: "validation_accuracy", 5: "test_accuracy"}


def decode_evaluation_data(buf: bytes) -> dict[str, Any]:
    """A serialized ``nasbench.EvaluationData`` as a dict (absent fields take the proto2
    default 0.0 / "", as the generated class reports them)."""
    out: dict[str, Any] = {name: 0.0 for name in _EVALUATION_DOUBLES.values()}
    out["checkpoint_path"] = ""
    for number, wire, value in _iter_fields(buf):
        if number in _EVALUATION_DOUBLES:
            out[_EVALUATION_DOUBLES[number]] = _as_double(number, wire, value)
        elif number == 6 and wire == _LENGTH_DELIMITED:
            out["checkpoint_path"] = value.decode("utf-8")
        # other fields: unknown to this schema version; protobuf skips them too
    return out


def decode_model_metrics(buf: bytes) -> dict[str, Any]:
    """A serialized ``nasbench.ModelMetrics`` as ``{"evaluation_data": [dict, ...],
    "trainable_parameters": int, "total_time": float}``."""
    out: dict[str, Any] = {"evaluation_data": [], "trainable_parameters": 0, "total_time": 0.0}
    for number, wire, value in _iter_fields(buf):
        if number == 1:
            if wire != _LENGTH_DELIMITED:
                raise ValueError(f"protobuf field 1: expected a message, got wire type {wire}")
            out["evaluation_data"].append(decode_evaluation_data(value))
        elif number == 2:
            out["trainable_parameters"] = _as_int32(number, wire, value)
        elif number == 3:
            out["total_time"] = _as_double(number, wire, value)
    return out


# ============================================================================ NB-101
def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    return path


def _parse_nb101_row(data: bytes) -> tuple[str, int, tuple, dict[str, Any]]:
    """``(module hash, epochs, (matrix, ops), ModelMetrics dict)`` of one NB-101 record.

    The record is the JSON list ``[module_hash, epochs, raw_adjacency, raw_operations,
    raw_metrics]`` that ``nasbench/api.py`` (``NASBench.__init__``) parses: the adjacency
    is the row-major n*n matrix as a string of 0/1 digits, the ops a comma-separated list
    and the metrics a base64 serialized ``ModelMetrics``.
    """
    row = json.loads(data.decode("utf-8"))
    if not isinstance(row, list) or len(row) != 5:
        raise ValueError("expected a JSON list "
                         "[module_hash, epochs, adjacency, operations, metrics]")
    module_hash, epochs, raw_adjacency, raw_operations, raw_metrics = row
    n = math.isqrt(len(raw_adjacency))
    if n * n != len(raw_adjacency) or set(raw_adjacency) - {"0", "1"}:
        raise ValueError(f"adjacency {raw_adjacency!r} is not an n*n string of 0/1 digits")
    matrix = tuple(tuple(int(raw_adjacency[i * n + j]) for j in range(n)) for i in range(n))
    ops = tuple(raw_operations.split(","))
    if len(ops) != n:
        raise ValueError(f"{len(ops)} operations for a {n}-vertex adjacency matrix")
    metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
    return str(module_hash), int(epochs), (matrix, ops), metrics


def _final_evaluation(metrics: dict[str, Any]) -> dict[str, Any]:
    # evaluation_data holds [at init, halfway, end of training]; nasbench's API reads the
    # final metrics from index 2 (``final_*`` keys of get_metrics_from_hash).
    evaluations = metrics["evaluation_data"]
    if len(evaluations) < 3:
        raise ValueError(f"ModelMetrics has {len(evaluations)} evaluations, expected 3 "
                         "(initial, halfway, final)")
    return evaluations[2]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def read_nb101_tfrecord(path: str | os.PathLike, verify_crc: bool = False,
                        check_hash: bool = False) -> list[ArchRecord]:
    """NAS-Bench-101 records from the official ``nasbench_only108.tfrecord`` /
    ``nasbench_full.tfrecord`` (storage.googleapis.com/nasbench, Ying et al. 2019).

    One :class:`ArchRecord` per module hash, in order of first appearance (``index``).
    ``arch`` is ``(matrix, ops)`` as stored: NB-101 stored the encoding it generated and
    trained (``generate_graphs.py`` keeps the first, already pruned, encoding per hash),
    which is what :class:`~bench_data.spaces.nb101.NB101Space` must build to reproduce the
    stored parameter count. ``stored_params`` is ``trainable_parameters``.

    Targets, for every epoch budget E in the file (108 only, or 4/12/36/108 for the full
    file), from the final evaluation of each training run, *mean over the repeats*
    present (normally 3): ``val_acc_E`` and ``test_acc_E`` (percent; the file stores
    fractions) and ``train_time_E`` (seconds). Note :func:`bench_data.spaces.nb101.load_records`
    holds one run per arch instead, so its values differ from these means.

    ``verify_crc`` checks the TFRecord checksums (slow in pure Python); ``check_hash``
    recomputes each module hash from its cell (:func:`~bench_data.spaces.nb101.nb101_hash`).
    """
    path = _existing_file(path)
    archs: dict[str, dict[str, Any]] = {}
    for i, data in enumerate(iter_tfrecord(path, verify_crc=verify_crc)):
        try:
            module_hash, epochs, arch, metrics = _parse_nb101_row(data)
            final = _final_evaluation(metrics)
            if check_hash:
                _check_nb101_hash(module_hash, arch)
        except (ValueError, TypeError, AttributeError) as err:  # incl. JSON / base64 / utf-8 errors
            raise ValueError(f"{path}: NB-101 record {i}: {err}") from err
        entry = archs.setdefault(module_hash, {
            "arch": arch, "params": metrics["trainable_parameters"], "runs": {}})
        if (entry["arch"], entry["params"]) != (arch, metrics["trainable_parameters"]):
            raise ValueError(f"{path}: NB-101 record {i}: module {module_hash} disagrees with "
                             "its earlier records on the cell or the parameter count")
        entry["runs"].setdefault(epochs, []).append(final)
    return [ArchRecord(arch=e["arch"], targets=_nb101_targets(e["runs"]),
                       stored_params=e["params"], index=index)
            for index, e in enumerate(archs.values())]


def _check_nb101_hash(module_hash: str, arch: tuple) -> None:
    from bench_data.spaces.nb101 import nb101_hash  # only needed when asked for

    computed = nb101_hash(*arch)
    if computed != module_hash:
        raise ValueError(f"module hash {module_hash} does not match its cell (computed {computed})")


def _nb101_targets(runs: dict[int, list[dict[str, Any]]]) -> dict[str, float]:
    targets = {}
    for epochs in sorted(runs):
        finals = runs[epochs]
        targets[f"val_acc_{epochs}"] = 100.0 * _mean([r["validation_accuracy"] for r in finals])
        targets[f"test_acc_{epochs}"] = 100.0 * _mean([r["test_accuracy"] for r in finals])
        targets[f"train_time_{epochs}"] = _mean([r["training_time"] for r in finals])
    return targets


# ==================================================================== NB-201 / NATS-TSS
# Our target name -> (the benchmark's dataset key, evaluation set). These are the sets
# NATS-Bench's get_more_info reports as "test" (cifar10 trains on train+valid and tests on
# the original test set; cifar100 / ImageNet16-120 split their test set into x-valid and
# x-test), the convention of bench_data.spaces.nb201.load_records.
NB201_TARGETS = {
    "cifar10": ("cifar10", "ori-test"),
    "cifar100": ("cifar100", "x-test"),
    "imagenet16": ("ImageNet16-120", "x-test"),
    "cifar10_valid": ("cifar10-valid", "x-valid"),
}
# Keys of the 200-epoch results per arch: "200" in NATS-Bench files, "full" in the
# NAS-Bench-201 v1.0/v1.1 .pth ("less" / "12" are the 12-epoch runs, not read here).
_HP_200 = ("200", "full")
_NATS_EXT = ".pickle.pbz2"
_NATS_ARCH_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")


def read_nats_tss(path: str | os.PathLike, dataset: str = "cifar10") -> list[ArchRecord]:
    """NAS-Bench-201 / NATS-Bench topology (TSS) records from the official release files.

    ``path`` is one of (D-X-Y/NAS-Bench-201, D-X-Y/NATS-Bench):

    * ``NAS-Bench-201-v1_0-e61699.pth`` / ``-v1_1-096897.pth``: a ``torch.save`` dict
      ``{"meta_archs": [arch str], "arch2infos": {index: {"less": ..., "full": ...}},
      "evaluated_indexes": ...}``;
    * ``NATS-tss-v1_0-3ffb9.pickle.pbz2``: the same dict, bz2-compressed pickle, with
      per-arch keys ``"12"`` / ``"200"``;
    * the ``NATS-tss-v1_0-3ffb9-simple`` directory: ``meta.pickle.pbz2`` (``meta_archs``)
      plus one ``{index:06d}.pickle.pbz2`` per arch holding ``{"12": ..., "200": ...}``.

    Each per-arch value is an ``ArchResults.state_dict()``: ``all_results`` maps
    ``(dataset, seed)`` to a ``ResultsCount`` state dict with ``params`` (millions),
    ``epochs`` and ``eval_acc1es`` keyed ``"<set>@<epoch index>"`` (percent).

    These files are pickles: loading runs code they reference, so read only files from a
    trusted source (``torch.load`` is called with ``weights_only=False`` for this reason).

    One :class:`ArchRecord` per evaluated arch, ``index`` = NB-201 arch index, ``arch`` =
    the NB-201 string. Targets (200 epochs, last epoch, mean over seeds, percent): see
    :data:`NB201_TARGETS` -- ``cifar10`` / ``cifar100`` / ``imagenet16`` as in
    :func:`bench_data.spaces.nb201.load_records`, plus ``cifar10_valid``; a dataset an
    arch was not trained on is left out. ``stored_params`` is the mean stored ``params``
    of the ``dataset`` network (``cifar10``, ``cifar100`` or ``imagenet16``: the classifier
    differs) as an integer count, ``round(params * 1e6)`` as ``nb201.load_records`` does.
    """
    if dataset not in ("cifar10", "cifar100", "imagenet16"):
        raise ValueError(f"dataset must be cifar10, cifar100 or imagenet16, got {dataset!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        meta_archs, arch2infos = _load_nats_directory(path)
    else:
        meta_archs, arch2infos = _split_bundle(path, _load_pickled(path))
    return [_nb201_record(path, index, meta_archs, arch2infos[index], dataset)
            for index in sorted(arch2infos)]


def _load_pickled(path: Path) -> Any:
    """Unpickle a NATS ``.pickle.pbz2`` (bz2 pickle) or an NB-201 ``.pth`` (torch.save)."""
    try:
        if path.name.endswith(_NATS_EXT):
            with bz2.BZ2File(path, "rb") as f:
                return pickle.load(f)
        import torch

        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 -- unpickling fails in many ways, all "not this format"
        raise ValueError(f"{path}: cannot be loaded as a NAS-Bench-201 / NATS-Bench file "
                         f"({type(err).__name__}: {err})") from err


def _split_bundle(path: Path, bundle: Any) -> tuple[list, dict]:
    """``(meta_archs, arch2infos)`` of a single-file release, validated."""
    if not isinstance(bundle, dict):
        raise ValueError(f"{path}: expected a dict with 'meta_archs' and 'arch2infos', "
                         f"got {type(bundle).__name__}")
    missing = [k for k in ("meta_archs", "arch2infos") if k not in bundle]
    if missing:
        raise ValueError(f"{path}: not a NAS-Bench-201 / NATS-Bench archive: no key(s) "
                         f"{missing} (has {sorted(map(str, bundle))[:10]})")
    if not isinstance(bundle["arch2infos"], dict):
        raise ValueError(f"{path}: 'arch2infos' is a "
                         f"{type(bundle['arch2infos']).__name__}, not a dict")
    return list(bundle["meta_archs"]), bundle["arch2infos"]


def _load_nats_directory(path: Path) -> tuple[list, dict]:
    """``(meta_archs, arch2infos)`` of a NATS-Bench ``-simple`` (or ``-full``) directory."""
    meta_file = path / f"meta{_NATS_EXT}"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file}: no such file (a NATS-Bench archive directory "
                                f"holds meta{_NATS_EXT} and one <index>{_NATS_EXT} per arch)")
    meta = _load_pickled(meta_file)
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise ValueError(f"{meta_file}: expected a dict with 'meta_archs'")
    arch2infos = {}
    for entry in sorted(os.listdir(path)):
        match = _NATS_ARCH_FILE.match(entry)
        if match:
            arch2infos[int(match.group(1))] = _load_pickled(path / entry)
    if not arch2infos:
        raise ValueError(f"{path}: no per-architecture <index>{_NATS_EXT} files")
    return list(meta["meta_archs"]), arch2infos


def _nb201_record(path: Path, index: Any, meta_archs: list, hp_infos: Any,
                  dataset: str) -> ArchRecord:
    from bench_data.spaces.nb201 import parse_arch

    where = f"{path}: arch {index}"
    if not isinstance(index, int) or not 0 <= index < len(meta_archs):
        raise ValueError(f"{where}: index outside meta_archs (length {len(meta_archs)})")
    arch = meta_archs[index]
    try:
        parse_arch(arch)
    except (ValueError, AttributeError) as err:
        raise ValueError(f"{where}: invalid NB-201 arch string {arch!r}") from err
    results = _results_200(where, hp_infos)
    if results.get("arch_str", arch) != arch:  # the per-arch copy must agree with meta_archs
        raise ValueError(f"{where}: arch_str {results['arch_str']!r} != meta_archs {arch!r}")

    targets, params = {}, None
    for name, (key, eval_set) in NB201_TARGETS.items():
        runs = _runs(where, results, key)
        if not runs:
            continue
        targets[name] = _mean([_final_accuracy(f"{where} {key}", run, eval_set) for run in runs])
        if name == dataset:
            params = round(_mean([float(run["params"]) for run in runs]) * 1e6)
    return ArchRecord(arch=arch, targets=targets, stored_params=params, index=index)


def _results_200(where: str, hp_infos: Any) -> dict:
    """The 200-epoch ``ArchResults`` state dict of one arch."""
    if not isinstance(hp_infos, dict):
        raise ValueError(f"{where}: expected a dict of results per training schedule, "
                         f"got {type(hp_infos).__name__}")
    for key in _HP_200:
        if key in hp_infos:
            results = hp_infos[key]
            if not isinstance(results, dict) or not isinstance(results.get("all_results"), dict):
                raise ValueError(f"{where}: [{key!r}] is not an ArchResults state dict "
                                 "(no 'all_results' dict)")
            return results
    raise ValueError(f"{where}: no 200-epoch results (keys {list(hp_infos)}, "
                     f"expected one of {_HP_200})")


def _runs(where: str, results: dict, key: str) -> list[dict]:
    """The ``ResultsCount`` state dicts of one dataset, in seed order."""
    all_results = results["all_results"]
    seeds = (results.get("dataset_seed") or {}).get(key)
    if seeds is None:  # tolerate a state dict without the seed index
        seeds = sorted(seed for (name, seed) in all_results if name == key)
    runs = []
    for seed in seeds:
        run = all_results.get((key, seed))
        if not isinstance(run, dict):
            raise ValueError(f"{where}: no result dict for ({key!r}, {seed!r})")
        runs.append(run)
    return runs


def _final_accuracy(where: str, run: dict, eval_set: str) -> float:
    # eval_acc1es is keyed "<set>@<epoch index>"; the last epoch of a 200-epoch run is 199.
    epochs = int(run.get("epochs", 200))
    key = f"{eval_set}@{epochs - 1}"
    accuracies = run.get("eval_acc1es")
    if not isinstance(accuracies, dict) or key not in accuracies:
        have = sorted(accuracies)[-4:] if isinstance(accuracies, dict) else accuracies
        raise ValueError(f"{where} seed {run.get('seed')}: no eval_acc1es[{key!r}] "
                         f"(last keys: {have})")
    return float(accuracies[key])


__all__: Sequence[str] = [
    "read_nb101_tfrecord", "read_nats_tss", "iter_tfrecord", "crc32c", "masked_crc32c",
    "decode_model_metrics", "decode_evaluation_data", "NB201_TARGETS",
]
