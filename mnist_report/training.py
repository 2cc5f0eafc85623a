"""Training: one typed recipe, one typed result, and a cache that never serves a stale result.

    net = Net(conv_net, batch_norm=True)
    recipe = Recipe(batch_size=128, epochs=3, schedule="onecycle", learning_rate=3e-3,
                    flatten=False)
    result = train(net, recipe, seed=0)       # a TrainResult
    result.test_accuracy, result.images_seen, result.row("best CNN")

The cache key of a run covers the code that shapes it: the training path (this module's
`_train_impl` and every project function it reaches: the input pipeline, schedules, scoring,
the recorder, the data split; see `cache.code_fingerprint`), the builder (its own fingerprint),
the builder's arguments, the recipe's non-default fields, the seed and the versions of
TensorFlow, Keras and NumPy.

The training path's code enters the key as TRAINING_VERSION while its fingerprint equals
TRAINING_FINGERPRINT, the one recorded with that version. A change to the code changes the
fingerprint: until it is recorded, the key carries the new fingerprint itself (so no stale entry
can be served) and tests/test_cache.py fails. Then decide:

* the change alters results: raise TRAINING_VERSION, then record the new fingerprint;
* a pure refactor (a rename, a move): record the new fingerprint only, and the cache is kept.

`python -m mnist_report.training` prints the live fingerprint; `--record` records it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import cache, ledger
from .config import configure, log, quiet_tensorflow_import, set_seed, settings
from .data import SPLITS, mnist_split
from .models import Net
from .probes import diagnostics
from .results import environment_record, jsonable

TRAINING_VERSION = 1
TRAINING_FINGERPRINT = "f3a0ebead55562ec"  # of the code below, on Python 3.11 (bytecode differs
TRAINING_PYTHON = "3.11"  # between Python versions; elsewhere runs are simply cached apart)

TRAIN_PROBE = 10_000  # training images scored at each snapshot (train loss and accuracy)
TRACE_PROBE = 1_000  # training images the per-step diagnostics are computed on
CURVE_FACTOR = 2 ** 0.5  # step-budget runs record validation metrics at steps growing this fast
STEP_BUDGET_CHUNK = 32  # most steps per call for step budgets: it sets where `curve` is recorded
ONE_CYCLE_WARMUP = 0.25  # one-cycle: share of the budget spent warming up ...
ONE_CYCLE_START = 1 / 25  # ... from this fraction of the peak learning rate (as fastai and PyTorch)
SCHEDULES = (None, "cosine", "onecycle")


# ------------------------------------------------------------------------------------------------
# The recipe and the result
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a network is trained, separate from what it is (its `Net`).

    Budget: `epochs` (validation after each epoch; optional early stopping on validation
    accuracy with `patience`, best weights restored) or `steps` (one shuffled stream of whole
    batches, so the training images must be a multiple of `batch_size`; validation metrics in
    `curve` at steps growing by CURVE_FACTOR; train/val/test metrics in `snapshots` at the given
    steps). Optimisation: Keras optimizer `optimizer` with `learning_rate` (the peak of a
    `schedule`: None, "cosine" or "onecycle") and options `optimizer_config` (e.g. momentum);
    `label_smoothing` softens the training targets (reported losses are the plain
    cross-entropy). Data: inputs scaled to [0, 1] unless `scale=False`, flattened unless
    `flatten=False`; `permute=seed` trains and scores on permuted-pixel MNIST; `n_train` and
    `n_eval` shorten the training and the validation/test sets (smoke profile); `all_train=True`
    trains on all 60,000 training images, as Keras's examples do (the validation images are then
    among them: their scores are training scores, never a basis for a choice); `split="student"`
    trains on the student's 48,000 images and validates on their 12,000 (data.mnist_split).
    With an epoch budget, `snapshots` are epochs: train/val/test metrics after each of them (with
    a constant learning rate, the state after epoch e is that of an e-epoch run); snapshot 0 scores
    the network before training (a program whose fit() never ran). `raw_pixels` names the parts
    ("train", "val", "test") fed raw 0-255 pixels while the others are scaled (a candidate edit of
    the student's program: one set left unscaled).
    `trace_steps` records per-step diagnostics (see probes.diagnostics) for the first steps.

    Fields left at their default do not enter the cache key, so a new field with a default
    keeps every cached run.
    """

    batch_size: int
    epochs: int | None = None
    steps: int | None = None
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    optimizer_config: Mapping[str, Any] | None = None
    schedule: str | None = None
    label_smoothing: float = 0.0
    patience: int | None = None
    scale: bool = True
    flatten: bool = True
    permute: int | None = None
    n_train: int | None = None
    n_eval: int | None = None
    snapshots: tuple[int, ...] = ()
    trace_steps: int = 0
    all_train: bool = False
    split: str = "report"
    raw_pixels: tuple[str, ...] = ()

    def __post_init__(self):
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one budget: epochs=... or steps=...")
        if (self.epochs if self.epochs is not None else self.steps) < 1 or self.batch_size < 1:
            raise ValueError("the budget (epochs or steps) and the batch size must be positive")
        for name in ("learning_rate", "label_smoothing"):  # 1 and 1.0: one recipe, one key
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        if self.split not in SPLITS or (self.split != "report" and self.all_train):
            raise ValueError(f"split must be one of {SPLITS} (all_train only with 'report'), "
                             f"not {self.split!r}")
        budget = self.steps or self.epochs
        if any(not 0 <= int(s) <= budget for s in self.snapshots):
            raise ValueError(f"snapshots {self.snapshots} must lie within the budget ({budget})")
        object.__setattr__(self, "snapshots", tuple(sorted({int(s) for s in self.snapshots})))
        raw = tuple(sorted(set(self.raw_pixels)))
        if not set(raw) <= {"train", "val", "test"} or (raw and not self.scale):
            raise ValueError(f"raw_pixels {self.raw_pixels} must name parts of 'train', 'val', "
                             "'test', with scale=True (scale=False leaves every part raw)")
        object.__setattr__(self, "raw_pixels", raw)
        config = dict(self.optimizer_config or {})
        object.__setattr__(self, "optimizer_config", config or None)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def scaled_parts(self) -> tuple[str, ...]:
        """The parts ("train", "val", "test") fed pixels scaled to [0, 1] (data.mnist_split's
        `scale`): all but `raw_pixels`, none when scale=False."""
        return tuple(p for p in ("train", "val", "test")
                     if self.scale and p not in self.raw_pixels)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (for a chapter's results file)."""
        out = dataclasses.asdict(self)
        out["snapshots"] = list(self.snapshots)
        out["raw_pixels"] = list(self.raw_pixels)
        return out

    def key(self) -> dict[str, Any]:
        """The fields that differ from their defaults: the recipe's part of a cache key."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)
                    if f.default is not dataclasses.MISSING}
        return {k: v for k, v in self.to_dict().items()
                if k not in defaults or v != jsonable(defaults[k])}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Recipe:
        return cls(**{k: tuple(v) if k in ("snapshots", "raw_pixels") else v
                      for k, v in record.items()})


@dataclasses.dataclass
class TrainResult:
    """One trained run: what was trained, how, its curves, its scores and its cost.

    `train_seconds` is the original run's training time (also when served from the cache;
    evaluation excluded); `images_seen` the training images it processed (epochs x training
    images, or steps x batch size), the budget in units that do not depend on the machine.

    `source` says where it came from: "trained" now, the local "cache", or the committed
    "ledger" (ledger.py), which keeps no weights and keeps `test_proba` only where a chapter
    read it. Such a run fetches a missing part on first use by retraining itself once, says so,
    and checks the retrained scores against the ledger's. `test_predictions` (the predicted
    class of each test image) needs only the ledger's compact predictions.
    """

    net: Net
    recipe: Recipe
    seed: int
    val_loss: float
    val_accuracy: float
    test_loss: float
    test_accuracy: float
    n_params: int
    epochs_run: float
    steps_run: int
    images_seen: int
    steps_per_call: int
    train_seconds: float
    final_learning_rate: float
    diverged_at: int | None
    history: dict[str, list[float]]
    curve: list[dict]
    snapshots: dict[int, dict]
    trace: list[dict]
    test_proba: np.ndarray | None = dataclasses.field(repr=False, compare=False)
    weights: list[np.ndarray] | None = dataclasses.field(repr=False, compare=False)
    environment: dict[str, Any]
    cached: bool = False
    cache_key: str = ""  # the key it is cached under (its analyses are cached under it too)
    threads: int | None = None  # TensorFlow threads its key records (train_many: 1)
    source: str = "trained"

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.train_seconds if self.train_seconds else float("nan")

    def model(self):
        """The trained Keras model (rebuilt from the net, with the trained weights). Analyses
        of it belong in a cached function (cache.cached), so that they replay without weights."""
        model = self.net.make()
        model.set_weights(self.weights)
        return model

    @property
    def test_predictions(self) -> np.ndarray:
        """The class predicted for each test image (argmax of `test_proba`), uint8."""
        proba = self.__dict__.get("test_proba")
        if proba is None and self.__dict__.get("_test_predictions") is not None:
            predictions = self.__dict__["_test_predictions"]
        else:
            proba = proba if proba is not None else self._part("test_proba", note=False)
            predictions = proba.argmax(1).astype(np.uint8)
        if self.cache_key:
            ledger.note_part("train", self.cache_key, "test_predictions", predictions)
        return predictions

    def _part(self, name: str, note: bool = True) -> Any:
        """A lazy part (test_proba, weights): held, or restored by retraining this run."""
        value = self.__dict__.get(name)
        if value is None:
            self._restore(name)
            value = self.__dict__[name]
        if self.cache_key and name == "test_proba" and note:
            ledger.note_part("train", self.cache_key, name, value)
        if self.cache_key and name == "weights" and not cache.inside_computation():
            ledger.note_weights("train", self.cache_key, self.label())
        return value

    def label(self) -> str:
        return f"{self.net.name} seed {self.seed} ({_recipe_text(self.recipe)})"

    def _restore(self, part: str) -> None:
        """Retrain this run (served from the ledger, which lacks `part`) and keep its weights and
        probabilities; warn if the retrained scores differ from the ledger's."""
        if not self.cache_key:
            raise ValueError(f"this run has no {part} and no cache key to retrain it by")
        ledger.check_compute("train", self.cache_key, f"the {part} of {self.label()}")
        log.warning("Retraining %s for its %s, which the ledger does not keep.", self.label(),
                    part)
        payload = _retrain(self.net, self.recipe, self.seed, self.threads, self.cache_key)
        changed = [k for k in ("val_accuracy", "val_loss", "test_accuracy", "test_loss")
                   if payload[k] != getattr(self, k)]
        if changed:
            log.warning("The retrained %s differs from its ledger record in %s (%s): this "
                        "machine's arithmetic differs from the recording machine's; its "
                        "analyses use the retrained weights.", self.label(), ", ".join(changed),
                        ", ".join(f"{payload[k]:.6g} vs {getattr(self, k):.6g}"
                                  for k in changed))
        self.__dict__["weights"] = payload["weights"]
        self.__dict__["test_proba"] = payload["test_proba"]

    def row(self, model: str) -> dict[str, Any]:
        """One row of a runs table: the label, the seed, the builder and its arguments, the
        recipe, and every scalar field of the result (derived from the fields, not listed)."""
        scalars = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                   if f.name not in ("cached", "threads", *_LAZY) and isinstance(
                       getattr(self, f.name), int | float)}
        scalars.pop("seed")
        recipe = {k: _cell(v) for k, v in self.recipe.to_dict().items() if k != "snapshots"}
        return {"model": model, "seed": self.seed, "build": self.net.name,
                **{k: _cell(v) for k, v in self.net.kwargs.items()}, **recipe,
                "diverged_at": self.diverged_at, **scalars}


_LAZY = ("test_proba", "weights")


def _lazy(name: str) -> property:
    return property(lambda self: self._part(name),
                    lambda self, value: self.__dict__.__setitem__(name, value),
                    doc=f"The run's {name} (restored by retraining if the ledger lacks it).")


for _name in _LAZY:  # after the dataclass: its __init__ assigns through these properties
    setattr(TrainResult, _name, _lazy(_name))


def _recipe_text(recipe: Recipe) -> str:
    return ", ".join(f"{k}={v}" for k, v in recipe.key().items())


def _cell(value: Any) -> Any:
    """A table cell: sequences as "32x64" ("none" when empty), dicts as JSON."""
    if isinstance(value, list | tuple):
        return "x".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


# ------------------------------------------------------------------------------------------------
# The training path (everything `_train_impl` reaches is in the cache key)
# ------------------------------------------------------------------------------------------------


def _train_impl(net: Net, recipe: Recipe, seed: int) -> dict[str, Any]:
    import keras

    set_seed(seed)
    data = mnist_split(scale=recipe.scaled_parts(), flatten=recipe.flatten, n_train=recipe.n_train,
                       permute=recipe.permute, n_eval=recipe.n_eval,
                       val_in_train=recipe.all_train, split=recipe.split)
    model = net.make()
    n_train, batch_size, steps = len(data["train"][1]), recipe.batch_size, recipe.steps
    # Up to settings().steps_per_execution steps per call for every budget; validation inside
    # fit() counts as evaluation, not training time.
    chunk = _steps_per_call(n_train, batch_size, steps, recipe.snapshots)
    learning_rate = _schedule(recipe.schedule, recipe.learning_rate,
                              steps or recipe.epochs * -(-n_train // batch_size))
    optimizer = keras.optimizers.get({"class_name": recipe.optimizer, "config": {
        "learning_rate": learning_rate, **(recipe.optimizer_config or {})}})
    loss, fit_data = "sparse_categorical_crossentropy", data
    if recipe.label_smoothing:  # Keras smooths one-hot targets only; scores stay unsmoothed
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
        fit_data = {part: (x, keras.utils.to_categorical(y, 10)) for part, (x, y) in data.items()}
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=1 if recipe.trace_steps else chunk)
    recorder = _recorder_class()(data, chunk if steps else None, recipe.snapshots,
                                 recipe.trace_steps)
    callbacks = [recorder]
    if recipe.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", patience=recipe.patience, restore_best_weights=True))
    train_data = _pipeline(*fit_data["train"], batch_size, shuffle=True, repeat=bool(steps))
    start = time.perf_counter()
    if steps:  # a step budget: "epochs" of `chunk` steps that continue one shuffled stream
        history = model.fit(train_data, epochs=steps // chunk, steps_per_epoch=chunk,
                            shuffle=False, callbacks=callbacks, verbose=0)
    else:
        history = model.fit(train_data, validation_data=_pipeline(*fit_data["val"], batch_size),
                            epochs=recipe.epochs, shuffle=False, callbacks=callbacks, verbose=0)
    train_seconds = time.perf_counter() - start - recorder.eval_seconds
    val_loss, val_accuracy = _scores(model, *data["val"])
    test_loss, test_accuracy, proba = _scores(model, *data["test"], with_proba=True)
    steps_run = int(optimizer.iterations.numpy())
    epochs_run = steps_run / -(-n_train // batch_size) if steps else len(history.epoch)
    return {
        "val_loss": val_loss, "val_accuracy": val_accuracy, "test_loss": test_loss,
        "test_accuracy": test_accuracy, "n_params": int(model.count_params()),
        "epochs_run": epochs_run, "steps_run": steps_run,
        "images_seen": steps_run * batch_size if steps else int(epochs_run) * n_train,
        "steps_per_call": chunk, "train_seconds": train_seconds,
        "final_learning_rate": float(optimizer.learning_rate),
        "diverged_at": recorder.diverged_at,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "curve": recorder.curve, "snapshots": recorder.snapshots, "trace": recorder.trace,
        "test_proba": proba.astype(np.float32), "weights": model.get_weights(),
        "environment": environment_record(),
    }


def _pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = False,
              repeat: bool = False):
    """The tf.data pipeline Keras's fit() builds for in-memory arrays (shuffled when `shuffle`:
    the same batches in the same order, so the same results), with tf.data's autotuning as
    settings().tf_data_autotune says (off by default). `repeat` makes it one endless stream, for
    step budgets."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    data = ArrayDataAdapter(x, y, batch_size=batch_size, shuffle=shuffle).get_tf_dataset()
    data = data.repeat() if repeat else data.apply(
        tf.data.experimental.assert_cardinality(-(-len(y) // batch_size)))
    options = tf.data.Options()
    options.autotune.enabled = settings().tf_data_autotune
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
    raise ValueError(f"unknown schedule {name!r}; use one of {SCHEDULES}")


def _steps_per_call(n_train: int, batch_size: int, steps: int | None,
                    snapshots: Sequence[int]) -> int:
    """Steps per execution: settings().steps_per_execution for an epoch budget (Keras ends a
    call early at the end of an epoch; a speed setting that changes no result); for a step
    budget, the largest divisor of STEP_BUDGET_CHUNK that also divides the passes over the data,
    the budget and every snapshot step, so each lands exactly at the end of a call (there the
    calls decide where `curve` is recorded, so the chunk is part of the training path)."""
    if not steps:
        return settings().steps_per_execution
    if n_train % batch_size:
        raise ValueError(f"a step budget needs whole batches: {n_train} training images are not "
                         f"a multiple of batch size {batch_size} (choose n_train)")
    return math.gcd(STEP_BUDGET_CHUNK, n_train // batch_size, steps, *snapshots)


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
            if 0 in self.wanted:  # the network before training
                key = "step" if self.chunk else "epoch"
                self.snapshots[0] = {key: 0, "seconds": 0.0,
                                     **self._timed(_snapshot, self.model, self.data)}
            if self.trace_steps:
                self.trace.append({"step": 0, **self._timed(diagnostics, self.model, *self.probe)})

        def on_train_batch_end(self, batch, logs=None):
            step = self._steps()
            if step <= self.trace_steps:
                self.trace.append({"step": step,
                                   **self._timed(diagnostics, self.model, *self.probe)})
            if not np.isfinite(logs.get("loss", 0.0)):  # diverged: nothing more to learn
                self.diverged_at = step
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if not self.chunk:  # an epoch budget: snapshots are epochs
                if epoch + 1 in self.wanted:
                    self.snapshots[epoch + 1] = {
                        "epoch": epoch + 1, "seconds": time.perf_counter() - self.start
                        - self.eval_seconds, **self._timed(_snapshot, self.model, self.data)}
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


# ------------------------------------------------------------------------------------------------
# The cache key, train() and train_many()
# ------------------------------------------------------------------------------------------------

_warned: set[str] = set()


def training_fingerprint() -> str:
    """The live fingerprint of the training path (compare TRAINING_FINGERPRINT): `_train_impl`
    and what it reaches, and the Recipe and Net classes (their defaults and methods)."""
    return cache.code_fingerprint(_train_impl, Recipe, Net)


def training_code() -> str:
    """The training path's part of a cache key: "v<TRAINING_VERSION>" while the code is the code
    recorded with that version; otherwise the live fingerprint, so that code nobody has
    recorded yet can never be served results of other code."""
    live = training_fingerprint()
    if live == TRAINING_FINGERPRINT:
        return f"v{TRAINING_VERSION}"
    if live not in _warned:
        _warned.add(live)
        log.warning("The training code's fingerprint %s is not the recorded %s: its results are "
                    "cached apart. Record it in mnist_report/training.py (raising "
                    "TRAINING_VERSION if results change).", live, TRAINING_FINGERPRINT)
    return f"v{TRAINING_VERSION}+{live}"


def numerics(threads: int | None = None) -> dict[str, Any]:
    """Process state that changes a run's numbers without being code or recipe, where it is not
    the default: Keras's dtype policy and float type, and TensorFlow's intra-op thread count
    (`threads` overrides it: train_many's workers use one thread, and sums taken in another
    order round differently). Read without importing Keras or TensorFlow when they are not
    loaded yet (then: defaults)."""
    import sys

    out = {}
    keras, tf = sys.modules.get("keras"), sys.modules.get("tensorflow")
    if keras is not None:
        if keras.mixed_precision.global_policy().name != "float32":
            out["policy"] = keras.mixed_precision.global_policy().name
        if keras.backend.floatx() != "float32":
            out["floatx"] = keras.backend.floatx()
    if threads is None and tf is not None:
        threads = tf.config.threading.get_intra_op_parallelism_threads()
    if threads:
        out["threads"] = int(threads)
    return out


def key_record(net: Net, recipe: Recipe, seed: int, threads: int | None = None
               ) -> dict[str, Any]:
    """Everything a run's cache key is made of (`cache.key_of` hashes it). The installed
    TensorFlow distribution is among the packages, so GPU runs (ACCEL=cuda) are kept apart."""
    state = numerics(threads)
    return {"training": training_code(), "builder": net.name,
            "builder_code": cache.code_fingerprint(net.build), "arch": dict(net.kwargs),
            "recipe": recipe.key(), "seed": int(seed), "packages": cache.package_versions(),
            **({"numerics": state} if state else {})}


def run_key(net: Net, recipe: Recipe, seed: int, threads: int | None = None) -> str:
    return cache.key_of(key_record(net, recipe, seed, threads))


def is_cached(net: Net, recipe: Recipe, seed: int, threads: int | None = None) -> bool:
    """Whether `train(net, recipe, seed)` would be served from the cache or the ledger in this
    process (with `threads`: in a process with that many TensorFlow threads, e.g. 1 for
    train_many)."""
    return cache.contains("train", run_key(net, recipe, seed, threads))


def _result(net: Net, recipe: Recipe, seed: int, key: str, payload: dict, source: str,
            threads: int | None) -> TrainResult:
    payload = dict(payload)
    predictions = payload.pop("test_predictions", None)
    payload.setdefault("test_proba", None)
    payload.setdefault("weights", None)
    result = TrainResult(net=net, recipe=recipe, seed=int(seed), cached=source != "trained",
                         cache_key=key, threads=threads, source=source, **payload)
    result.__dict__["_test_predictions"] = predictions
    return result


def _from_cache(net: Net, recipe: Recipe, seed: int, key: str,
                threads: int | None = None) -> TrainResult | None:
    payload, source = cache.fetch("train", key, f"training {net.name} seed {seed}")
    if payload is None:
        return None
    return _result(net, recipe, seed, key, payload, source, threads)


def _retrain(net: Net, recipe: Recipe, seed: int, threads: int | None, key: str) -> dict:
    """Train a run afresh for its weights, in a process like the one its key records (one
    TensorFlow thread: a train_many worker), and keep it in the local cache."""
    if threads:
        from joblib.externals.loky import get_reusable_executor

        executor = get_reusable_executor(max_workers=settings().n_jobs)
        payload = executor.submit(_retrain_in_worker, net, recipe, seed,
                                  settings().as_dict()).result()
    else:
        payload = _train_impl(net, recipe, seed)
    cache.store("train", key, payload)
    return payload


_RUN_COUNTS = {"cached": 0, "trained": 0}  # this process's runs, for a chapter to report once


def _counted(result: TrainResult) -> TrainResult:
    _RUN_COUNTS["cached" if result.cached else "trained"] += 1
    return result


def run_counts() -> dict[str, int]:
    """How many runs `train` and `train_many` have returned in this process so far, served from
    the training cache and trained afresh: {"cached": n, "trained": m}."""
    return dict(_RUN_COUNTS)


def train(net: Net, recipe: Recipe, seed: int, *, use_cache: bool = True) -> TrainResult:
    """Train `net` by `recipe` from `seed` (or fetch the run from the cache). With
    use_cache=False it trains afresh and leaves the cache alone (for timing: bench.py)."""
    if not isinstance(net, Net) or not isinstance(recipe, Recipe):
        raise TypeError("train(net, recipe, seed) takes a models.Net and a training.Recipe")
    key = run_key(net, recipe, seed) if use_cache else ""
    threads = numerics().get("threads")
    result = _from_cache(net, recipe, seed, key, threads) if use_cache else None
    if result is None:
        payload = _train_impl(net, recipe, seed)
        if use_cache:
            cache.store("train", key, payload)
        result = _result(net, recipe, seed, key, payload, "trained", threads)
    return _counted(result)


WORKER_THREADS = 1  # TensorFlow threads in each of train_many's worker processes


def _worker_setup(config: dict) -> None:
    quiet_tensorflow_import()
    import tensorflow as tf

    configure(**config)  # the caller's settings (its cache folder, its profile)
    if tf.config.threading.get_intra_op_parallelism_threads() != WORKER_THREADS:  # a new worker
        tf.config.threading.set_intra_op_parallelism_threads(WORKER_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(WORKER_THREADS)


def _train_in_worker(net: Net, recipe: Recipe, seed: int, config: dict) -> TrainResult:
    _worker_setup(config)
    return train(net, recipe, seed)


def _retrain_in_worker(net: Net, recipe: Recipe, seed: int, config: dict) -> dict:
    _worker_setup(config)
    return _train_impl(net, recipe, seed)


def train_many(runs: Sequence[tuple[Net, Recipe, int]], desc: str = "runs",
               n_jobs: int | None = None) -> list[TrainResult]:
    """The runs (net, recipe, seed) trained side by side in `n_jobs` worker processes (loky;
    settings().n_jobs by default) with one TensorFlow thread each: small dense networks spend
    most of a step in per-step overhead, which one process cannot spread over two cores.
    Results come back in order. They are cached under keys that record the one thread (so they
    are kept apart from `train()` in this process, whose sums may round differently), and a
    warm rerun starts no worker. For the CNNs it does not pay (their convolutions already keep
    both cores busy): train them with `train`."""
    from joblib.externals.loky import get_reusable_executor
    from tqdm.auto import tqdm

    runs = list(runs)
    results = {i: result for i, run in enumerate(runs) if (result := _from_cache(
        *run, run_key(*run, WORKER_THREADS), WORKER_THREADS)) is not None}
    todo = [i for i in range(len(runs)) if i not in results]
    if todo:  # worker processes even for n_jobs=1, so a run never depends on n_jobs
        # An idle worker that loky retired is restarted; its notice is not a result.
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs")
        executor = get_reusable_executor(max_workers=n_jobs or settings().n_jobs)
        config = settings().as_dict()
        futures = [executor.submit(_train_in_worker, *runs[i], config) for i in todo]
        for i, future in zip(todo, tqdm(futures, desc=desc, mininterval=10,
                                               disable=not settings().progress or None),
                             strict=True):
            results[i] = future.result()
    return [_counted(results[i]) for i in range(len(runs))]  # workers count in their process


def headline(net: Net, recipe: Recipe, seeds: Sequence[int]) -> dict[str, Any]:
    """How a headline model was trained, for its chapter's results JSON: later chapters and
    bench.py rebuild it with `from_headline` instead of declaring it again."""
    return {"net": net.to_dict(), "recipe": recipe.to_dict(), "seeds": [int(s) for s in seeds]}


def from_headline(record: Mapping[str, Any]) -> tuple[Net, Recipe, list[int]]:
    """(net, recipe, seeds) of a `headline()` record read back from a results file."""
    return (Net.from_dict(record["net"]), Recipe.from_dict(record["recipe"]),
            list(record["seeds"]))


if __name__ == "__main__":  # `python -m mnist_report.training [--record]`
    import re
    import sys
    from pathlib import Path

    from mnist_report import training as module  # as imported, not as __main__

    live = module.training_fingerprint()
    print(f"TRAINING_VERSION = {module.TRAINING_VERSION}; fingerprint: live {live}, recorded "
          f"{module.TRAINING_FINGERPRINT}")
    if "--record" in sys.argv[1:] and live != module.TRAINING_FINGERPRINT:
        path = Path(module.__file__)
        path.write_text(re.sub(r'^TRAINING_FINGERPRINT = "[0-9a-f]*"',
                               f'TRAINING_FINGERPRINT = "{live}"', path.read_text(), count=1,
                               flags=re.MULTILINE))
        print(f"recorded {live} in {path.name}: raise TRAINING_VERSION too if results change")
