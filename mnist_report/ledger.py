"""The run ledger: the results cache's compact records, committed in results/ledger/, so that a
fresh clone re-executes every chapter in minutes and retrains only what the current code would
compute differently.

Lookup order (`cache.fetch`): the local cache (.cache/, with weights) -> the ledger -> compute.
The ledger serves an entry only under the key the current code computes (the cache's own honest
key, see cache.py) and only when the entry's digest, which covers its namespace, key and
contents, checks out; an unreadable or altered line is skipped with a warning naming the file
and line, so it is recomputed, never half-used.

What an entry holds: the cached payload without what is big and rarely read. A training run
keeps its scores, history, curves, snapshots, trace and environment record; never its weights,
and its per-image test probabilities (`test_proba`) or predicted classes (`test_predictions`)
only where a chapter read them. A run served from the ledger that is asked for a part the
ledger lacks retrains itself once (training.TrainResult says which run and checks the retrained
scores against the ledger's). Work that needs weights (perturbed accuracy, probes, figures of
filters) is itself cached under the run's key, so it replays without them.

Recording: `make report` and `make run` set MNIST_LEDGER_RECORD to a folder and MNIST_CHAPTER to
the notebook's name; every entry a process reads or computes is appended there (one file per
process). `python -m mnist_report.ledger build FOLDER [--replace]` then writes one file per
chapter, results/ledger/NN_name.jsonl, holding exactly the entries that chapter read: one JSON
object a line, sorted by namespace and key, so files diff and merge line by line. `--replace`
(a full `make report`) also deletes the files of chapters that no longer exist.

MNIST_LEDGER selects the mode: "on" (the default) serves from the ledger; "off" ignores it (a
true cold run: `make retrain`); "only" raises LedgerMiss instead of computing anything, which
is how a test proves that a chapter replays from the ledger alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import sys
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .config import COMMITTED_RESULTS, log, rel, settings

MODES = ("on", "off", "only")
LAZY_PARTS = ("test_proba", "test_predictions")  # a run's parts kept only where a chapter reads
DROPPED_PARTS = ("weights",)  # never in the ledger
SIZE_LIMIT_MB = 30  # the whole ledger (tests/test_ledger.py guards it)


class LedgerMiss(RuntimeError):
    """MNIST_LEDGER=only and a computation the ledger does not hold was asked for."""


class LedgerError(ValueError):
    """A value the ledger cannot store (it would not come back the same)."""


def mode() -> str:
    value = os.environ.get("MNIST_LEDGER", "on").strip().lower()
    if value not in MODES:
        raise ValueError(f"MNIST_LEDGER={value!r}: use one of {MODES} ('on' serves from the "
                         "committed ledger, 'off' ignores it, 'only' computes nothing)")
    return value


PROFILE_FOLDERS = {"full": "", "smoke": "smoke"}  # smoke entries: results/ledger/smoke/


def folder(profile: str | None = None) -> Path:
    """results/ledger/ for the full profile, results/ledger/smoke/ for the smoke profile (what
    `make test` trains; its keys never equal the full profile's); `profile` defaults to the
    active one. MNIST_LEDGER_DIR moves it, for tests."""
    if os.environ.get("MNIST_LEDGER_DIR"):
        return Path(os.environ["MNIST_LEDGER_DIR"]).resolve()
    profile = profile or settings().profile
    return (COMMITTED_RESULTS / "ledger" / PROFILE_FOLDERS[profile]).resolve()


# ------------------------------------------------------------------------------------------------
# Encoding: JSON that gives back exactly what went in (types, NaN, int keys, arrays bit for bit)
# ------------------------------------------------------------------------------------------------


def _pack(array: np.ndarray) -> str:
    """An array's bytes, shuffled by byte significance (exponents together compress well) and
    deflated, as base64 text."""
    array = np.ascontiguousarray(array)
    raw = np.frombuffer(array.tobytes(), np.uint8)
    if array.itemsize > 1 and raw.size:
        raw = raw.reshape(-1, array.itemsize).T
    return base64.b64encode(zlib.compress(raw.tobytes(), 9)).decode("ascii")


def _unpack(text: str, dtype: str, shape: list[int]) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = np.frombuffer(zlib.decompress(base64.b64decode(text)), np.uint8)
    if dtype.itemsize > 1 and raw.size:
        raw = raw.reshape(dtype.itemsize, -1).T
    return np.frombuffer(np.ascontiguousarray(raw).tobytes(), dtype).reshape(shape).copy()


def encode(value: Any) -> Any:
    """`value` as plain JSON, tagged where JSON alone would change it: tuples, dicts whose keys
    are not strings, non-finite floats, NumPy scalars and arrays."""
    if value is None or isinstance(value, bool | str):
        return value
    if type(value) is int:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise LedgerError("the ledger stores numeric arrays only")
        return {"__array__": value.dtype.str, "shape": list(value.shape), "data": _pack(value)}
    if isinstance(value, np.generic):
        return {"__scalar__": value.dtype.str, "data": _pack(np.asarray(value))}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    raise LedgerError(f"the ledger cannot store a {type(value).__name__}")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__array__" in value:
        return _unpack(value["data"], value["__array__"], value["shape"])
    if "__scalar__" in value:
        return _unpack(value["data"], value["__scalar__"], [])[()]
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {decode(k): decode(v) for k, v in value["__dict__"]}
    return {k: decode(v) for k, v in value.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(namespace: str, key: str, record: Any, extras: dict) -> str:
    """What a line's "sha" must be: its namespace, key and contents together, so neither a
    damaged record nor a record moved under another key is served."""
    text = _canonical([namespace, key, record, extras])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def compact(namespace: str, payload: Any) -> Any:
    """The part of a cached payload the ledger keeps (a training run: all but its weights and
    its per-image parts; those come as extras, where read)."""
    if namespace == "train" and isinstance(payload, dict):
        return {k: v for k, v in payload.items() if k not in (*LAZY_PARTS, *DROPPED_PARTS)}
    return payload


# ------------------------------------------------------------------------------------------------
# Reading the committed ledger
# ------------------------------------------------------------------------------------------------

_INDEX: dict[str, Any] = {"stamp": None, "entries": {}}


def _stamp(files: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def files(profile: str | None = None) -> list[Path]:
    """The ledger files of `profile` (default: the active one)."""
    return sorted(folder(profile).glob("*.jsonl"))


def total_bytes() -> int:
    """The size of the whole ledger, both profiles."""
    return sum(p.stat().st_size for profile in PROFILE_FOLDERS for p in files(profile))


def read_file(path: Path) -> dict[tuple[str, str], dict]:
    """The entries of one ledger file whose digest checks out; a line that cannot be read or
    whose digest is wrong is skipped with a warning that names the file and the line."""
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                ns, key, sha = entry["ns"], entry["key"], entry["sha"]
                record, extras = entry["record"], entry.get("extras", {})
                ok = sha == digest(ns, key, record, extras)
            except (ValueError, KeyError, TypeError) as error:
                log.warning("Ledger %s, line %d, cannot be read (%s): skipped, so that entry "
                            "is computed afresh.", rel(path), number, error)
                continue
            if not ok:
                log.warning("Ledger %s, line %d (%s %s): its digest does not match its contents "
                            "(damaged or edited by hand): skipped, so that entry is computed "
                            "afresh.", rel(path), number, ns, key[:12])
                continue
            entries[ns, key] = {"record": record, "extras": extras, "file": path.name}
    return entries


def index() -> dict[tuple[str, str], dict]:
    """Every entry of the ledger (files read once per process, again when one changes); an entry
    in several chapters' files has the extras of all of them."""
    paths = files()
    stamp = _stamp(paths)
    if _INDEX["stamp"] != stamp:
        merged: dict[tuple[str, str], dict] = {}
        for path in paths:
            for ident, entry in read_file(path).items():
                if ident in merged:
                    merged[ident]["extras"] = {**entry["extras"], **merged[ident]["extras"]}
                else:
                    merged[ident] = entry
        _INDEX.update(stamp=stamp, entries=merged)
    return _INDEX["entries"]


def lookup(namespace: str, key: str) -> Any | None:
    """The ledger's payload for (namespace, key), its extras merged in; None when it has none or
    MNIST_LEDGER=off."""
    if mode() == "off":
        return None
    entry = index().get((namespace, key))
    if entry is None:
        return None
    payload = decode(entry["record"])
    if entry["extras"]:
        payload = {**payload, **{k: decode(v) for k, v in entry["extras"].items()}}
    return payload


def check_compute(namespace: str, key: str, what: str = "") -> None:
    """Raise LedgerMiss under MNIST_LEDGER=only: something would be computed."""
    if mode() == "only":
        raise LedgerMiss(
            f"MNIST_LEDGER=only: the {namespace} entry {key[:16]}{f' ({what})' if what else ''} "
            "is in neither the local cache nor the ledger, so it would be computed. Re-execute "
            "the chapter with `make run NB=..` (which records the ledger) and commit "
            "results/ledger/.")


# ------------------------------------------------------------------------------------------------
# Recording what a process reads, and building the ledger from the recordings
# ------------------------------------------------------------------------------------------------

_NOTED: set[tuple] = set()


def recording() -> Path | None:
    value = os.environ.get("MNIST_LEDGER_RECORD")
    return Path(value) if value else None


def _append(line: dict) -> None:
    where = recording()
    if where is None:
        return
    where.mkdir(parents=True, exist_ok=True)
    line = {"chapter": os.environ.get("MNIST_CHAPTER") or "unnamed", **line}
    with open(where / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, allow_nan=False) + "\n")


def note(namespace: str, key: str, payload: Any) -> None:
    """Record that this process read or computed (namespace, key) (when recording)."""
    ident = (str(recording()), "entry", namespace, key)
    if recording() is None or ident in _NOTED:
        return
    _NOTED.add(ident)
    _append({"ns": namespace, "key": key, "record": encode(compact(namespace, payload))})


def note_part(namespace: str, key: str, part: str, value: Any) -> None:
    """Record that this process read a lazy part (test_proba, test_predictions) of an entry."""
    ident = (str(recording()), "part", namespace, key, part)
    if recording() is None or ident in _NOTED:
        return
    _NOTED.add(ident)
    _append({"ns": namespace, "key": key, "part": part, "value": encode(value)})


def note_weights(namespace: str, key: str, label: str) -> None:
    """Record that weights were read outside a cached computation: a fresh clone, which has no
    weights, would retrain that run (the build reports these)."""
    ident = (str(recording()), "weights", namespace, key)
    if recording() is None or ident in _NOTED:
        return
    _NOTED.add(ident)
    _append({"ns": namespace, "key": key, "weights": label})


def build(record_dir: Path, replace: bool = False) -> dict[str, Any]:
    """Write results/ledger/<chapter>.jsonl for every chapter recorded in `record_dir`: exactly
    the entries that chapter read. `replace`: also delete the files of chapters not recorded (a
    full `make report` recorded every chapter). Returns a summary (files, entries, sizes, and the
    runs whose weights were read outside a cached computation)."""
    chapters: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    weights: dict[str, set] = defaultdict(set)
    for path in sorted(Path(record_dir).glob("*.jsonl")):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                line = json.loads(text)
            except ValueError as error:
                raise ValueError(f"recording {path}, line {number}: {error}") from error
            ident = (line["ns"], line["key"])
            if "weights" in line:
                weights[line["chapter"]].add(line["weights"])
                continue
            entry = chapters[line["chapter"]].setdefault(ident, {"record": None, "extras": {}})
            if "record" in line:
                entry["record"] = line["record"]
            else:
                entry["extras"][line["part"]] = line["value"]
    out = folder()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"files": {}, "weights_read": {k: sorted(v) for k, v in
                                                             weights.items()}}
    for chapter, entries in sorted(chapters.items()):
        lines = []
        for (ns, key), entry in sorted(entries.items()):
            if entry["record"] is None:
                raise ValueError(f"recording {record_dir}: chapter {chapter} read a part of "
                                 f"{ns} {key[:12]} but its record was never written")
            extras = dict(sorted(entry["extras"].items()))
            if "test_proba" in extras:  # predictions are its argmax
                extras.pop("test_predictions", None)
            line = {"ns": ns, "key": key, "sha": digest(ns, key, entry["record"], extras),
                    "record": entry["record"]}
            if extras:
                line["extras"] = extras
            lines.append(json.dumps(line, sort_keys=False, allow_nan=False,
                                    separators=(",", ":")))
        target = out / f"{chapter}.jsonl"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target)
        summary["files"][target.name] = {"entries": len(lines), "bytes": target.stat().st_size}
    if replace:
        for path in out.glob("*.jsonl"):
            if path.stem not in chapters:
                path.unlink()
                summary["files"][path.name] = "deleted"
    summary["total_bytes"] = total_bytes()
    return summary


def build_text(summary: dict[str, Any]) -> str:
    lines = [f"ledger {rel(folder())}: {summary['total_bytes'] / 1e6:.1f} MB in all (both "
             "profiles)"]
    for name, info in summary["files"].items():
        text = info if isinstance(info, str) else (
            f"{info['entries']:,} entries, {info['bytes'] / 1e6:.2f} MB")
        lines.append(f"  {name}: {text}")
    for chapter, labels in summary["weights_read"].items():
        lines.append(f"  {chapter} read the weights of {len(labels)} runs outside a cached "
                     f"computation; a fresh clone retrains them: {', '.join(labels[:5])}"
                     + (" ..." if len(labels) > 5 else ""))
    return "\n".join(lines)


def stats() -> list[dict[str, Any]]:
    """Per ledger file: entries by namespace, size, and the training its runs record (seconds
    of training as recorded on the machine that ran them, images seen): what `make retrain`
    would redo for that chapter."""
    rows = []
    for path in files():
        entries = read_file(path)
        runs = [e["record"] for (ns, _), e in entries.items()
                if ns == "train"]
        by_ns: dict[str, int] = defaultdict(int)
        for ns, _ in entries:
            by_ns[ns] += 1
        rows.append({"file": path.name, "bytes": path.stat().st_size, **dict(by_ns),
                     "train_seconds": sum(r.get("train_seconds", 0) for r in runs),
                     "images_seen": sum(r.get("images_seen", 0) for r in runs)})
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["stats"]:
        for row in stats():
            print(f"{row['file']}: {row['bytes'] / 1e6:.2f} MB, "
                  + ", ".join(f"{row[ns]} {ns}" for ns in ("train", "cached", "perturbed")
                              if ns in row)
                  + f"; training recorded {row['train_seconds']:,.0f} s, "
                  f"{row['images_seen']:,} images")
        return 0
    if len(argv) < 2 or argv[0] != "build":
        print("usage: python -m mnist_report.ledger build RECORD_DIR [--replace] | stats")
        return 2
    record_dir = Path(argv[1])
    if not record_dir.is_dir() or not any(record_dir.glob("*.jsonl")):
        print(f"nothing recorded in {record_dir}: the ledger is left as it is")
        return 1
    print(build_text(build(record_dir, replace="--replace" in argv[2:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
