"""Results: the files under results/ (or the smoke folder) that later chapters read, each with
the environment that produced it.

NN_name.json (summary + environment), NN_runs.csv (one row per run), NN_predictions.npz (test-set
class probabilities per run). docs/results.md documents the format.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .config import ROOT, check_writable, rel, settings

REPORT_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "scikit-learn",
                   "scipy", "matplotlib", "seaborn", "joblib")


@cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction-set extensions that decide how fast TensorFlow's CPU kernels run here (AVX2 Zen 3
# parts and AVX-512 Zen 5 parts are both called "AMD EPYC"; bfloat16 needs AVX512_BF16 or AMX).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


@cache
def cpu_flags() -> list[str]:
    """Which of SPEED_FLAGS this CPU reports (from /proc/cpuinfo; empty where unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [flag for flag in SPEED_FLAGS if flag in have]
    except OSError:
        pass
    return []


def cpu_description() -> str:
    """The CPU in words, for prose beside a timing: model name, family and model numbers (which
    tell the AMD EPYC generations apart), the vector extension TensorFlow uses, the cores."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    family = (f", family {fields['cpu family']} model {fields['model']}"
              if "cpu family" in fields and "model" in fields else "")
    vector = "AVX-512" if "avx512f" in cpu_flags() else "AVX2" if "avx2" in cpu_flags() else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{_cpu_model()}{family}{', ' + vector if vector else ''}, {cores} cores"


def accelerators() -> list[str]:
    """The GPUs TensorFlow sees (empty on the CPU build); only asked once TensorFlow is loaded."""
    if "tensorflow" not in sys.modules:
        return []
    tf = sys.modules["tensorflow"]
    return [device.name for device in tf.config.list_physical_devices("GPU")]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_record() -> dict[str, Any]:
    """Package versions, CPU, threads and profile: what a result was computed with."""
    versions = {}
    for name in REPORT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                                          "TF_NUM_INTEROP_THREADS") if k in os.environ}
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        threads["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        threads["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    return {
        "profile": settings().profile,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_flags": cpu_flags(),
        "gpus": accelerators(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "packages": versions,
    }



def jsonable(value: Any) -> Any:
    """`value` with dicts keyed by strings, tuples as lists and NumPy values as Python ones."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


CODE_PATHS = ("mnist_report", "helpers.py")  # code that computes results, besides the notebooks


def git_dirty() -> list[str] | None:
    """The files whose code differs from HEAD (the package and helpers.py as files, each
    notebook by its code cells' sources, so executed outputs do not count); empty when the code
    that computes results is committed, None outside a git checkout. A results file records it
    beside `git_commit`, which is then only the parent of the code that wrote it."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)

    try:
        changed = git("status", "--porcelain", "--", *CODE_PATHS, "notebooks")
        if changed.returncode != 0:
            return None
        dirty = []
        for line in changed.stdout.splitlines():
            path = line[3:].strip().split(" -> ")[-1]
            if not path.endswith(".ipynb"):
                dirty.append(path)
                continue
            head = git("show", f"HEAD:{path}")
            now = (ROOT / path).read_text() if (ROOT / path).exists() else ""
            if head.returncode != 0 or _code_cells(head.stdout) != _code_cells(now):
                dirty.append(path)
        return sorted(dirty)
    except (OSError, subprocess.SubprocessError):
        return None


def _code_cells(text: str) -> list[str]:
    """A notebook's code-cell sources (empty for text that is not a notebook)."""
    try:
        cells = json.loads(text).get("cells", [])
    except ValueError:
        return []
    return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]


def save_json(name: str, data: dict[str, Any]) -> Path:
    """Write `results/<name>.json` as {"results": data, "environment": environment_record() and
    `git_dirty`, the files whose code differed from HEAD}."""
    path = check_writable(settings().results / f"{name}.json")
    payload = {"results": jsonable(data),
               "environment": {**environment_record(), "git_dirty": git_dirty()}}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


class MissingResultsError(FileNotFoundError):
    """A results file that another notebook writes has not been produced in this profile.

    In a notebook it shows as its message alone, not as a traceback: the message says which
    notebook to run first, and the code that noticed the missing file is of no use to the reader.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom error displays
        return [f"{type(self).__name__}: {self}"]


def _how_to_run(chapters: Sequence[str]) -> str:
    """How to produce the results of these chapters in the active profile."""
    if settings().smoke:  # `make run` always uses the full profile
        return ("execute the chapters in order in the smoke profile (`make notebooks-test` runs "
                "every chapter that way)")
    return "run " + ", then ".join(f"`make run NB={c}`" for c in chapters)


def _existing_result(filename: str) -> Path:
    path = settings().results / filename
    if not path.exists():
        chapter = filename[:2]
        raise MissingResultsError(
            f"{rel(path)} does not exist in the {settings().profile} profile. It is written by "
            f"notebooks/{chapter}_*.ipynb: {_how_to_run([chapter])} first."
        )
    return path


def load_json(name: str) -> dict[str, Any]:
    """The `results` part of `RESULTS/<name>.json`."""
    return json.loads(_existing_result(f"{name}.json").read_text())["results"]


def save_table(name: str, table) -> Path:
    """Write a pandas DataFrame as `RESULTS/<name>.csv` (one row per run, no index)."""
    path = check_writable(settings().results / f"{name}.csv")
    table.to_csv(path, index=False, float_format="%.6g")
    return path


def load_table(name: str):
    """`RESULTS/<name>.csv` as a pandas DataFrame."""
    import pandas as pd

    return pd.read_csv(_existing_result(f"{name}.csv"))


def save_predictions(name: str, probabilities: dict[str, np.ndarray]) -> Path:
    """Write test-set class probabilities as `RESULTS/<name>.npz`.

    One array per run, keyed "<model>/seed<N>" (or "<model>" for an ensemble), each
    10,000 x 10 in the order of MNIST's test set; `load_predictions` reads them back as float32.
    Stored as float16 to keep the files small, unless rounding would change a predicted label
    (a near tie), in which case that array is stored as float32.
    """
    path = check_writable(settings().results / f"{name}.npz")
    arrays = {}
    for key, p in probabilities.items():
        p = np.asarray(p, dtype=np.float32)
        if p.ndim != 2 or p.shape[1] != 10:
            raise ValueError(f"{key}: expected (n_test, 10) probabilities, got {p.shape}")
        half = p.astype(np.float16)
        arrays[key] = half if np.array_equal(half.argmax(1), p.argmax(1)) else p
    np.savez_compressed(path, **arrays)
    return path


def require_results(*names: str) -> None:
    """Check that every results file named (e.g. "02_dense_network.json") exists in this
    profile; otherwise raise one MissingResultsError that lists each notebook to run first."""
    missing = sorted({name[:2] for name in names if not (settings().results / name).exists()})
    if missing:
        notebooks = ", ".join(f"notebooks/{n}_*.ipynb" for n in missing)
        s = settings()
        raise MissingResultsError(
            f"This notebook reads the results of chapters {', '.join(missing)}, which do not "
            f"exist yet in the {s.profile} profile ({rel(s.results)}/): {notebooks}. To make "
            f"them, {_how_to_run(missing)}"
            + ("" if s.smoke else ", or `make report` for everything") + ".")


def load_predictions(name: str) -> dict[str, np.ndarray]:
    """{key: 10,000 x 10 float32 probabilities} from `RESULTS/<name>.npz`."""
    with np.load(_existing_result(f"{name}.npz"), allow_pickle=False) as npz:
        return {key: npz[key].astype(np.float32) for key in npz.files}

