"""Configuration: root-anchored paths, the profile, the cache folder, seeds, the student's numbers.

Every module reads configuration at call time through `settings()`, never from a copy taken at
import. Tests (and `train_many`'s worker processes) change it through one function,
`configure(...)`, which returns the previous settings so they can be restored:

    previous = configure(profile="smoke", cache=tmp_path / "cache")
    ...
    configure(**previous.as_dict())

MNIST_PROFILE=full (the default) runs the real experiments and writes figures/ and results/;
MNIST_PROFILE=smoke shrinks everything so each notebook runs in seconds and writes to a temporary
folder (MNIST_SMOKE_DIR, else <tmp>/mnist-report-smoke), so tests never overwrite committed
artifacts. MNIST_CACHE_DIR moves the training cache (default .cache/ in the project).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow's C++ logging writes start-up notes and a harmless tf.data attribute warning into every
# notebook cell that trains. Keep only fatal messages unless the user sets the variable already
# (TF_CPP_MIN_LOG_LEVEL=0 shows everything). Python-level errors are unaffected.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Its Python logger warns about tf.function retracing when many small models are built in a row
# (a sweep does exactly that); the warning is about speed, not correctness. A filter, not a level:
# TensorFlow resets the level to INFO when it first logs inside Jupyter.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("tensorflow").addFilter(lambda record: record.levelno >= logging.ERROR)

log = logging.getLogger("mnist_report")

# Paths: anchored at the project root, never at the current directory (nbval runs kernels inside
# notebooks/, a user may run from anywhere).
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
COMMITTED_FIGURES = ROOT / "figures"
COMMITTED_RESULTS = ROOT / "results"

PROFILES = ("full", "smoke")
SEED = 42

# Thresholds that judge, written once: chapters' prose and claims use them by name (facts.py).
THRESHOLDS = {
    "ALPHA": 0.05,  # significance level of every test
    "CALIBRATED_ECE": 0.01,  # a model with a smaller expected calibration error is "calibrated"
    "SMALL_EFFECT": 0.002,  # the smallest accuracy difference of interest: 0.2 points
    "SMALL_SMD": 0.2,  # a standardised mean difference below this is "small" (Cohen)
    "COLLAPSED_SHARE": 0.9,  # a run "collapsed" when >= 90 % of its test predictions are one class
}

# The student's write-up that this report starts from (test accuracy and loss on MNIST's test set).
STUDENT = {
    "dense_batch128": {"accuracy": 0.1263, "loss": 2.3577},
    "dense_batch2048": {"accuracy": 0.9206, "loss": 0.2843},
    "cnn": {"accuracy": 0.9936, "loss": 0.0219},
}


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


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the modules read at call time. `figures` and `results` follow the profile unless
    given; `cache` holds the training results (hours of work: only `make clean-cache` deletes
    it). The rest are speed settings that never change a result (tests/test_training.py checks
    each), so they are not part of any cache key: `n_jobs`, the worker processes of
    `train_many`; `steps_per_execution`, the most training steps per call into TensorFlow;
    `tf_data_autotune`, tf.data's autotuning of the input pipeline (off: on 2 cores it left
    about every other fit() idle for 3.5 s before returning); `progress`, live progress bars
    (MNIST_PROGRESS=0 turns them off, as `make report` does, so executed notebooks store none)."""

    profile: str
    figures: Path
    results: Path
    cache: Path
    n_jobs: int = 2
    steps_per_execution: int = 32
    tf_data_autotune: bool = False
    progress: bool = True

    @property
    def smoke(self) -> bool:
        return self.profile == "smoke"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _from_environment() -> Settings:
    profile = get_profile()
    figures, results = output_dirs(profile)
    cache = ROOT / (os.environ.get("MNIST_CACHE_DIR") or ".cache")  # relative: to the root
    cache = cache.resolve()
    return Settings(profile=profile, figures=figures, results=results, cache=cache,
                    progress=os.environ.get("MNIST_PROGRESS", "1") != "0")


_current: Settings | None = None


def settings() -> Settings:
    """The active settings (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = _from_environment()
    return _current


def configure(**changes: Any) -> Settings:
    """Change the active settings; returns the previous ones. `profile=` also moves `figures`
    and `results` to that profile's folders unless they are given too. Unknown names are an
    error, so a typo cannot pass silently."""
    global _current
    previous = settings()
    unknown = set(changes) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise TypeError(f"configure() got unknown settings {sorted(unknown)}")
    if "profile" in changes:
        changes["profile"] = get_profile(changes["profile"])
        figures, results = output_dirs(changes["profile"])
        changes.setdefault("figures", figures)
        changes.setdefault("results", results)
    for name in ("figures", "results", "cache"):
        if name in changes:
            changes[name] = Path(changes[name]).resolve()
    _current = dataclasses.replace(previous, **changes)
    return previous


def pick(full: Any, smoke: Any) -> Any:
    """The value for the active profile: `n = pick(full=3000, smoke=300)`."""
    return smoke if settings().smoke else full


def check_writable(path: Path) -> Path:
    """Refuse to write committed artifacts from the smoke profile; create the parent folder."""
    path = Path(path).resolve()
    if settings().smoke:
        for committed in (COMMITTED_FIGURES, COMMITTED_RESULTS):
            if path.is_relative_to(committed.resolve()):
                raise RuntimeError(
                    f"The smoke profile must not write {path}: figures/ and results/ hold the "
                    "committed outputs of the full profile. Set MNIST_SMOKE_DIR elsewhere."
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def rel(path: Path) -> str:
    """A path relative to the project root where it lies inside it (for messages and output)."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def rng(purpose: str) -> np.random.Generator:
    """A NumPy generator for one purpose ("01 samples"), seeded by SEED and the purpose's name:
    the same draws however often, and in whatever order, a notebook's cells run (one generator
    shared by several cells would hand each cell other numbers after a rerun)."""
    import zlib

    return np.random.default_rng([SEED, zlib.crc32(purpose.encode())])


def set_seed(seed: int = SEED, keras: bool = True) -> None:
    """Seed Python and NumPy; with keras=True also Keras/TensorFlow, with deterministic ops."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds code that uses the global generator)
    if keras:
        import keras as _keras
        import tensorflow as tf

        _keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


def quiet_tensorflow_import() -> None:
    """Import TensorFlow with the process's standard error silenced: its C++ start-up lines
    (oneDNN, absl) go straight to file descriptor 2, past Python's logging and
    TF_CPP_MIN_LOG_LEVEL, and a notebook would store them in whichever cell first touches it
    (worker processes share the kernel's descriptor)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
