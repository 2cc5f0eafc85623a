"""Typed chapter records: what one chapter's results file offers the others, as dataclasses.

A chapter writes its facts record (`facts.Facts`, results/NN_name.json). The parts of it that
other chapters, `summary.py` (the README and the report's index) and `bench.py` read are declared
here, one dataclass per chapter, in the style of `Recipe` and `TrainResult`:

    dense = records.load("02_dense_network")      # a DenseRecord, read from results/
    dense.mlp.test_accuracy_mean                  # a field, not dense["mlp"]["test_accuracy_mean"]
    cnn = records.load("04_cnn")
    cnn.noise.at("best CNN", 0.3)                 # by level, not by position in a list

- `load` checks the record when it reads it: a field missing or of the wrong kind raises
  RecordError naming the file and the field (`dense_network.mlp.ci95: expected 2 numbers`).
- `Facts.save` checks a chapter's record the same way before it writes it, so a chapter cannot
  commit a results file its readers cannot read.
- `docs/results.md` lists every field from these declarations (`python -m mnist_report.records`
  rewrites its generated block; a test holds it to them).

A record declares only what is read across chapters; the other facts stay in the file, for the
chapter's own prose and claims.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RecordError(ValueError):
    """A results file lacks a field a reader needs, or holds it in the wrong form."""


def doc(text: str, **kwargs) -> Any:
    """A field with its documentation (docs/results.md lists it)."""
    return field(metadata={"doc": text}, **kwargs)


Interval = tuple[float, float]
"""(low, high)"""
Estimate = tuple[float, float, float]
"""(mean, low, high)"""


# ------------------------------------------------------------------------------------------------
# Parts shared by several chapters
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Model:
    """A headline model over seeds: how it was trained and what it scored (climb.seeds_record)."""

    recipe: dict = doc("how it was trained: `helpers.headline(net, recipe, seeds)`, read back "
                       "by `helpers.from_headline`")
    seeds: int = doc("runs (one per seed)")
    images_seen: int = doc("training images one run processed")
    test_accuracy_mean: float = doc("mean test accuracy over the seeds")
    ci95: Interval = doc("95 % Student-t interval of that mean, over seeds")
    test_accuracy_per_seed: tuple[float, ...] = doc("each seed's test accuracy", default=())
    test_loss_mean: float | None = doc("mean test loss", default=None)
    val_accuracy_mean: float | None = doc("mean validation accuracy", default=None)
    n_params: int | None = doc("trainable parameters", default=None)
    train_seconds_mean: float | None = doc("mean training seconds on the machine that trained "
                                           "it", default=None)
    runs_label: str | None = doc("the label of its rows in the chapter's runs table",
                                 default=None)
    epochs: int | None = doc("epochs trained", default=None)
    batch_size: int | None = doc("batch size", default=None)


@dataclass(frozen=True, kw_only=True)
class BestCnn(Model):
    """Chapter 04's best single CNN."""

    row: str = doc("the climb's row it comes from")
    gain_over_student_ci95: Estimate = doc("its gain in test accuracy over the student-level "
                                           "CNN (Welch, over seeds)")


@dataclass(frozen=True, kw_only=True)
class FastCnn(Model):
    """Chapter 04's quickest configuration to 99 % validation accuracy."""

    config: str = doc("the configuration, in words")
    train_seconds_range: Interval = doc("its fastest and slowest seed, in seconds")


@dataclass(frozen=True, kw_only=True)
class ConvergenceTest:
    """The report's convergence test of one model (`stats.converged`): its budget doubled on the
    same seeds, and the paired interval of the change in mean validation accuracy read against a
    margin."""

    difference: float = doc("mean validation accuracy, doubled budget minus chosen")
    low: float = doc("its 95 % paired t-interval, low end")
    high: float = doc("its high end")
    margin: float = doc("converged when the interval lies inside +-margin")
    verdict: str = doc("`converged`, `still improving` or `undecided`")
    seeds: int = doc("seeds run at both budgets")
    epochs: int | None = doc("the chosen budget in epochs (the doubled is twice it)", default=None)
    test_change: float | None = doc("mean test accuracy, doubled minus chosen (reported only)",
                                    default=None)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Only how a model was trained."""

    recipe: dict = doc("`helpers.headline(net, recipe, seeds)`")


# ------------------------------------------------------------------------------------------------
# Chapter 02: the dense network
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StudentMatch:
    """The version of the student's mnist.py (edit and epoch) closest to one recorded number."""

    edit: str = doc("`as committed`, or the single edit (`student.DENSE_EDITS`)")
    epoch: int = doc("the epoch whose scores come closest")
    runs: int = doc("runs (seeds) at that edit and batch size")
    test_accuracy: float = doc("their mean test accuracy at that epoch")
    accuracy_interval: Interval = doc("95 % prediction interval for one new run (97.5 % per "
                                      "metric)")
    test_loss: float = doc("their mean test loss")
    loss_interval: Interval = doc("the same for the loss")
    p: float = doc("the calibrated rule's combined p-value")
    consistent: bool = doc("both recorded numbers inside their intervals")
    also_consistent: tuple[str, ...] = doc("other edits consistent at some epoch", default=())
    epochs: str = doc("the epochs at which it is consistent, e.g. `5–6`", default="")
    program: str = doc("the program's file", default="mnist.py")

    @property
    def name(self) -> str:
        """In words: "mnist.py as committed, 5 epochs" (student.program_name)."""
        from .student import program_name

        return program_name(dataclasses.asdict(self))


@dataclass(frozen=True, kw_only=True)
class StudentProgram:
    """The student's own mnist.py (ts-39/MNIST), run by the engine."""

    repository: str = doc("the student's repository on GitHub")
    best_match: dict[str, StudentMatch] = doc("per batch size (`batch128`, `batch2048`)")
    pair: str = doc("the one program that gives both dense numbers with only the batch size "
                    "changed, or empty")
    final: dict[str, dict[str, float]] = doc("per batch size (`128`, `2048`): mean "
                                             "`test_accuracy` and `test_loss` after 100 epochs")
    epochs: int = doc("epochs each run trained (the program's 100)")
    consistency: tuple[dict, ...] = doc("per edit: `edit`, and the epochs at which each batch "
                                        "size's number is consistent (`epochs_128`, "
                                        "`epochs_2048`)")


@dataclass(frozen=True, kw_only=True)
class Searched:
    """The closest program of chapter 02's search, ranked on the student's test numbers."""

    configuration: dict = doc("program, activation, inputs, optimizer, epochs")
    seeds: int = doc("confirmation runs")
    test_accuracy_mean: float = doc("their mean test accuracy")
    accuracy_interval: Interval = doc("95 % prediction interval for one new run")
    test_loss_mean: float = doc("their mean test loss")
    loss_interval: Interval = doc("the same for the loss")
    p: float = doc("the calibrated rule's p-value")
    consistent: bool = doc("both recorded numbers inside their intervals")


@dataclass(frozen=True, kw_only=True)
class Search:
    """Chapter 02's search for the student's dense program."""

    cells_searched: int = doc("configurations screened per batch size")
    closest_batch128: Searched = doc("the closest to 12.63 % / 2.3577")
    closest_batch2048: Searched = doc("the closest to 92.06 % / 0.2843")


@dataclass(frozen=True, kw_only=True)
class Grid:
    """Chapter 02's MLP grid."""

    learning_rates: tuple[float, ...] = doc("the learning rates tried")


@dataclass(frozen=True, kw_only=True)
class DenseRecord:
    """results/02_dense_network.json"""

    mlp: Model = doc("the MLP chosen on validation")
    softmax_regression: Model = doc("the linear baseline")
    student_setting: dict[str, Recipe] = doc("the student's dense setting per batch size "
                                             "(`batch128`, `batch2048`)")
    student_program: StudentProgram = doc("the student's own mnist.py")
    reproduction: Search = doc("the search for the student's program")
    grid: Grid = doc("the MLP's grid")
    convergence: dict[str, ConvergenceTest] = doc("the convergence test of `softmax regression` "
                                                  "and `chosen MLP`")


# ------------------------------------------------------------------------------------------------
# Chapter 03: the batch-size sweep
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Gap:
    mean: float = doc("mean difference")
    ci95: Interval = doc("95 % t-interval over seeds")


@dataclass(frozen=True, kw_only=True)
class Convergence:
    """Chapter 03's runs to convergence at each batch size's tuned learning rate."""

    seeds: int = doc("seeds per batch size")
    gap_128_minus_2048: Gap = doc("test accuracy at batch 128 minus batch 2048")


@dataclass(frozen=True, kw_only=True)
class SweepRecord:
    """results/03_batch_size_sweep.json"""

    convergence: Convergence = doc("trained until validation stops improving")


# ------------------------------------------------------------------------------------------------
# Chapter 04: the CNN
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Program:
    """A published Keras example, judged against the student's CNN numbers."""

    seeds: float = doc("runs")
    test_accuracy: float = doc("mean test accuracy")
    accuracy_low: float = doc("95 % prediction interval for one new run, low")
    accuracy_high: float = doc("and high")
    test_loss: float = doc("mean test loss")
    loss_low: float = doc("the loss's interval, low")
    loss_high: float = doc("and high")
    p: float = doc("the calibrated rule's p-value")
    reproduced: bool = doc("both recorded numbers inside their intervals")
    recipe: dict = doc("`helpers.headline(net, recipe, seeds)`")


@dataclass(frozen=True, kw_only=True)
class CnnReproduction:
    rule: str = doc("the rule, in words")
    closest: str = doc("the closest program")
    programs: dict[str, Program] = doc("every program tried, by name")

    @property
    def closest_program(self) -> Program:
        return self.programs[self.closest]


@dataclass(frozen=True, kw_only=True)
class ClimbRow:
    """One row of chapter 04's climb at one budget."""

    epochs: int = doc("epochs")
    seeds: int = doc("seeds")
    val_accuracy: float = doc("mean validation accuracy")
    test_accuracy: float = doc("mean test accuracy")
    val_gain_ci95: Estimate | None = doc("paired gain over the row above, on validation",
                                         default=None)
    test_gain_ci95: Estimate | None = doc("the same on test", default=None)


@dataclass(frozen=True, kw_only=True)
class Ensemble:
    members: int = doc("networks averaged")
    pool: str = doc("which runs, in words")
    test_accuracy: float = doc("the ensemble's test accuracy")
    clopper_pearson95: Interval = doc("exact 95 % interval over test images")


@dataclass(frozen=True, kw_only=True)
class Permuted:
    mean: float = doc("mean test accuracy over seeds")
    ci95: Interval = doc("95 % t-interval")
    recipe: dict = doc("`helpers.headline(net, recipe, seeds)`")


@dataclass(frozen=True, kw_only=True)
class PermutationPaired:
    """Paired by seed: (mean, low, high), 95 % t over seeds."""

    mlp_drop: Estimate = doc("the MLP's accuracy lost to permuting the pixels")
    cnn_drop: Estimate = doc("the CNN's")
    cnn_minus_mlp_permuted: Estimate = doc("the CNN's lead over the MLP on permuted pixels")


@dataclass(frozen=True, kw_only=True)
class Curves:
    """Test accuracy of each model at each level of a perturbation."""

    levels: tuple[float, ...] = doc("the levels (pixels, or the noise's sigma)")
    accuracy: dict[str, tuple[float, ...]] = doc("model -> mean accuracy at each level")

    def __post_init__(self):
        for model, values in self.accuracy.items():
            if len(values) != len(self.levels):
                raise RecordError(f"{model}: {len(values)} accuracies for {len(self.levels)} "
                                  "levels")

    def at(self, model: str, level: float) -> float:
        """`model`'s accuracy at `level` (a level the chapter measured, else KeyError)."""
        for value, accuracy in zip(self.levels, self.accuracy[model], strict=True):
            if abs(value - level) < 1e-9:
                return accuracy
        raise KeyError(f"level {level} was not measured; the levels are {self.levels}")


@dataclass(frozen=True, kw_only=True)
class RunnerCheck:
    """One run of the standalone runner (student_runner), read as one new run of the engine's."""

    environment: str = doc("`student (runner)` or `project (runner)`")
    seed: int = doc("its seed")
    test_accuracy: float = doc("its test accuracy after the last epoch")
    test_loss: float = doc("its test loss")
    p: float = doc("the calibrated rule's p against the engine's seeds at that epoch")
    consistent: bool = doc("inside the engine's 95 % prediction intervals")


@dataclass(frozen=True, kw_only=True)
class StudentCnn:
    """The student's own mnistcnn.py with its fit() active."""

    best_match: StudentMatch = doc("the epoch closest to 99.36 % / 0.0219")
    seeds: int = doc("the engine's seeds")
    epochs: int = doc("epochs per run (every one scored)")
    final_accuracy: float = doc("mean test accuracy after the last epoch")
    final_loss: float = doc("mean test loss after the last epoch")
    runner: tuple[RunnerCheck, ...] = doc("the runner's runs (the environment control)",
                                          default=())
    versions_accuracy_max: float | None = doc(
        "largest paired |student - project| final test accuracy of the runner (None: one "
        "environment ran)", default=None)


@dataclass(frozen=True, kw_only=True)
class CnnRecord:
    """results/04_cnn.json"""

    reproduction: CnnReproduction = doc("the Keras examples against the student's CNN")
    climb: dict[str, ClimbRow] = doc("the climb, keyed `row | N epochs`")
    climb_seeds: int = doc("seeds per climb row")
    aug_detectable: float = doc("the smallest augmentation effect the climb's seeds detect "
                                "(80 % power, 5 %)")
    student_level: Model = doc("the student-level CNN (the Keras convnet, 15 epochs)")
    best_single: BestCnn = doc("the best single CNN, chosen on validation")
    fast_to_99: FastCnn = doc("the quickest to 99 % validation accuracy")
    ensemble: Ensemble = doc("the ensemble of the best CNN's seeds")
    permuted: dict[str, Permuted] = doc("`CNN`/`MLP` × `original`/`permuted` pixels")
    permutation_paired: PermutationPaired = doc("the permutation's effects, paired by seed")
    noise: Curves = doc("Gaussian noise of sigma `levels`")
    student_program: StudentCnn | None = doc("the student's mnistcnn.py, once run",
                                             default=None)

    @property
    def augmentation_rows(self) -> dict[int, ClimbRow]:
        """The climb's augmentation row by epochs."""
        return {row.epochs: row for name, row in self.climb.items() if "augmentation" in name}


# ------------------------------------------------------------------------------------------------
# Chapter 05: the comparison
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Verdict:
    claim: str = doc("the student's claim")
    verdict: str = doc("the verdict, in one sentence")
    evidence: str = doc("its evidence, with the chapters it comes from")


@dataclass(frozen=True, kw_only=True)
class ComparisonRecord:
    """results/05_comparison.json"""

    timing_machine: str = doc("the CPU `make bench` timed the models on")
    verdict: tuple[Verdict, ...] = doc("one per claim of the student's")


RECORDS: dict[str, type] = {"02_dense_network": DenseRecord, "03_batch_size_sweep": SweepRecord,
                            "04_cnn": CnnRecord, "05_comparison": ComparisonRecord}


# ------------------------------------------------------------------------------------------------
# Building a record from a results file's JSON, checked
# ------------------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{where}: expected a number, found {value!r:.60}")
    return value


def _convert(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _convert(kind, value, where)
    if dataclasses.is_dataclass(kind):
        return build(kind, value, where)
    if kind is float:
        return float(_number(value, where))
    if kind is int:
        number = _number(value, where)
        if number != int(number):
            raise RecordError(f"{where}: expected a whole number, found {value!r}")
        return int(number)
    if kind is bool:
        if not isinstance(value, bool):
            raise RecordError(f"{where}: expected true or false, found {value!r:.60}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise RecordError(f"{where}: expected text, found {value!r:.60}")
        return value
    if kind is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise RecordError(f"{where}: expected a mapping, found {value!r:.60}")
        if not args:
            return dict(value)
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RecordError(f"{where}: expected a list, found {value!r:.60}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise RecordError(f"{where}: expected {len(args)} items, found {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]")
                     for i, (a, v) in enumerate(zip(args, value, strict=True)))
    raise TypeError(f"{where}: records cannot hold {kind!r}")  # a declaration error, not data's


def build(cls: type, data: Any, where: str | None = None) -> Any:
    """An instance of the record dataclass `cls` from a results file's JSON (`data`), every
    declared field checked; keys it does not declare are left out."""
    where = where or cls.__name__
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: expected a mapping, found {data!r:.60}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING:
                raise RecordError(f"{where}.{f.name} is missing ({f.metadata.get('doc', '')})")
            continue
        values[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**values)


def of(chapter: str, results: Mapping[str, Any]) -> Any:
    """The typed record of `chapter` (e.g. "04_cnn") from its results (the JSON's `results`)."""
    return build(RECORDS[chapter], results, chapter)


def load(chapter: str) -> Any:
    """The typed record of `chapter`, read from its results file in the active profile."""
    from .results import load_json

    return of(chapter, load_json(chapter))


def coerce(cls: type, value: Any, where: str | None = None) -> Any:
    """`value` as a `cls` record: itself if it is one, else built from its mapping (a chapter
    passing its facts before it saves them)."""
    return value if isinstance(value, cls) else build(cls, value, where)


def check(chapter: str, results: Mapping[str, Any]) -> None:
    """Raise RecordError if `results` would not give `chapter`'s record (chapters without one
    pass). Facts.save calls it before writing."""
    if chapter in RECORDS:
        of(chapter, results)


# ------------------------------------------------------------------------------------------------
# docs/results.md: every declared field
# ------------------------------------------------------------------------------------------------


def _type_text(kind: Any) -> str:
    """A field's type as the docs show it: `dict[str, Model]`, `tuple[float, ...]`; an optional
    field (`X | None`) as X."""
    if kind is Ellipsis:
        return "..."
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_text(a) for a in args)}]"
    return getattr(kind, "__name__", str(kind))


def schema_markdown() -> str:
    """One table per chapter record, and one per part it uses, in the order they are met."""
    seen: list[type] = []

    def visit(cls: type) -> None:
        if cls in seen:
            return
        seen.append(cls)
        for kind in typing.get_type_hints(cls).values():
            for inner in (kind, *typing.get_args(kind), *(a for x in typing.get_args(kind)
                                                         for a in typing.get_args(x))):
                if dataclasses.is_dataclass(inner):
                    visit(inner)

    for cls in RECORDS.values():
        visit(cls)
    lines = []
    for cls in seen:
        title = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines += [f"**`{cls.__name__}`**" + (f": {title}" if title else ""), "",
                  "| field | type | meaning |", "| --- | --- | --- |"]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            optional = f.default is not dataclasses.MISSING
            lines.append(f"| `{f.name}` | `{_type_text(hints[f.name])}` | "
                         f"{f.metadata.get('doc', '')}{' (optional)' if optional else ''} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOCS = Path(__file__).resolve().parent.parent / "docs" / "results.md"
BLOCK = re.compile(r"(<!-- generated: records -->\n)(.*?)(<!-- /generated -->)", re.S)


def render_docs(text: str) -> str:
    if not BLOCK.search(text):
        raise ValueError("docs/results.md has no <!-- generated: records --> block")
    return BLOCK.sub(lambda m: m.group(1) + schema_markdown() + m.group(3), text)


if __name__ == "__main__":  # `python -m mnist_report.records`: rewrite docs/results.md's block
    DOCS.write_text(render_docs(DOCS.read_text()))
    print(f"{DOCS.name}: the records' fields rewritten", file=sys.stderr)
