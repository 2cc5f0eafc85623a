"""The student's programs (the public repository ts-39/MNIST) as the report's recipes, with where
they come from and the numbers the student recorded. Their code is described, not copied.

    net, recipe = student.dense_program(batch_size=128)   # mnist.py as committed
    net, recipe = student.cnn_program()                    # mnistcnn.py with its fit() active

One 100-epoch run with a snapshot after every epoch gives every shorter run (a constant learning
rate: the state after epoch e is that of an e-epoch run), with validation and test scores.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cached, package_versions
from .config import ROOT, set_seed
from .models import Net, dense_net, student_cnn
from .probes import collapse_signature
from .stats import consistency_row, fmt_pct
from .student_runner import main as runner_main
from .training import Recipe

REPOSITORY = "ts-39/MNIST"
# The files as read (commit of the stored version), and what each does.
FILES: dict[str, dict[str, str]] = {
    "README.md": {"commit": "ebe7cae1064d1137d7be1cd6a5cda4533c217dc7",
                  "what": "the write-up (../shared/student_writeup.md, word for word)"},
    "mnist.py": {"commit": "21f828225c99a201d9bc8fe37bcca34c4e4035ce",
                 "what": "the dense network: 784 -> Dense(64, ReLU) -> Dense(10, softmax) "
                         "(a Dense(256) line commented out), RMSprop at Keras's defaults, "
                         "batch 2048, 100 epochs, pixels / 255, the 48,000/12,000 split; a "
                         "comment records both batch sizes' test loss and accuracy"},
    "mnistcnn.py": {"commit": "21f828225c99a201d9bc8fe37bcca34c4e4035ce",
                    "what": "the CNN (models.student_cnn), Adam at Keras's defaults, the same "
                            "data; its fit() call (batch 2048, 100 epochs) is commented out, so "
                            "the file as committed scores an untrained network"},
    "requirements.txt": {"commit": "858710370e4515c6e62a28274839b78095b9c2be",
                         "what": "tensorflow 2.17.0, keras 3.5.0, numpy 1.26.4, scikit-learn "
                                 "1.5.1 (make student-env)"},
}
# The numbers mnist.py's comment records, to full precision (test loss, test accuracy); the CNN's
# only as the write-up rounds them (mnistcnn.py records none).
RECORDED = {
    "dense_batch128": {"loss": 2.3576579093933105, "accuracy": 0.12630000710487366},
    "dense_batch2048": {"loss": 0.2842666804790497, "accuracy": 0.9205999970436096},
    "cnn": {"loss": 0.0219, "accuracy": 0.9936},
}
EPOCHS = 100


def dense_program(batch_size: int = 2048, epochs: int = EPOCHS, **changes: Any
                  ) -> tuple[Net, Recipe]:
    """mnist.py as committed (or with `changes` to the recipe, for a candidate edit), with a
    snapshot after every epoch."""
    recipe = Recipe(batch_size=batch_size, epochs=epochs, optimizer="rmsprop", split="student",
                    snapshots=tuple(range(epochs + 1)))
    return Net(dense_net, hidden=(64,)), recipe.replace(**changes) if changes else recipe


def cnn_program(batch_size: int = 2048, epochs: int = EPOCHS, **changes: Any
                ) -> tuple[Net, Recipe]:
    """mnistcnn.py with its training call active, with a snapshot after every epoch."""
    recipe = Recipe(batch_size=batch_size, epochs=epochs, optimizer="adam", split="student",
                    flatten=False, snapshots=tuple(range(epochs + 1)))
    return Net(student_cnn), recipe.replace(**changes) if changes else recipe


@dataclasses.dataclass(frozen=True)
class Edit:
    """A single edit the student may have made to mnist.py between the recorded runs and the
    commit: why it is plausible (a trace in the files), and how it changes the program (the
    network's and the recipe's arguments). `runs=False`: no new runs, the reason says why."""

    name: str
    why: str
    net: dict = dataclasses.field(default_factory=dict)
    recipe: dict = dataclasses.field(default_factory=dict)
    runs: bool = True


# Written before any of them was run (commit history), most plausible first.
DENSE_EDITS: tuple[Edit, ...] = (
    Edit("as committed", "the file as it is"),
    Edit("fit() not run", "mnistcnn.py was committed with its fit() call commented out; the "
         "untrained network is every run's snapshot at epoch 0", runs=False),
    Edit("another epoch count", "epochs = 100 is a round value set last; Keras's mnist_mlp "
         "example, which the file follows, trains 20; every run's per-epoch snapshots give every "
         "count up to 100", runs=False),
    Edit("no validation data", "a second fit() line without validation_data is commented out "
         "beside the active one; validation is scored after each epoch and touches neither the "
         "weights nor the random state, so it cannot move the numbers (checked, paired by seed, "
         "with the standalone runner)", runs=False),
    Edit("Dense(256) active", "a Dense(256, ReLU) line above Dense(64) is commented out",
         net={"hidden": (256, 64)}),
    Edit("Dropout(0.2) after the hidden layer", "Dropout is imported and unused; Keras's "
         "mnist_mlp example, whose RMSprop, batch 128, /255 and to_categorical the file follows, "
         "puts Dropout(0.2) after each hidden layer", net={"dropout": 0.2}),
    Edit("no pixel scaling", "the three /= 255 lines are a block of their own that may have come "
         "after the batch-128 run", recipe={"scale": False}),
    Edit("training and validation pixels unscaled", "one forgotten line: the network trains on "
         "0-255 pixels and is tested on [0, 1] ones", recipe={"raw_pixels": ("train", "val")}),
    Edit("test pixels unscaled", "one forgotten line: the network trains on [0, 1] pixels and is "
         "tested on 0-255 ones", recipe={"raw_pixels": ("test",)}),
    Edit("optimizer 'adam'", "another optimizer string (RMSprop is imported as a class but the "
         "string is used, so the optimizer line was edited at least once)",
         recipe={"optimizer": "adam"}),
    Edit("optimizer 'sgd'", "another optimizer string, Keras's plain SGD (learning rate 0.01)",
         recipe={"optimizer": "sgd", "learning_rate": 0.01}),
)


def dense_edit(name: str, batch_size: int, epochs: int = EPOCHS, **changes: Any
               ) -> tuple[Net, Recipe]:
    """mnist.py with the named edit (DENSE_EDITS; "as committed": none), at a batch size;
    `changes` to the recipe on top (the smoke profile's shorter sets)."""
    edit = {e.name: e for e in DENSE_EDITS}[name]
    if not edit.runs:
        raise ValueError(f"the edit {name!r} needs no runs of its own: {edit.why}")
    net, recipe = dense_program(batch_size, epochs, **{**edit.recipe, **changes})
    return net.replace(**edit.net), recipe


def train_cnn(seeds: Sequence[int], epochs: int = EPOCHS, batch_size: int = 2048,
              **changes: Any) -> dict[tuple[str, int, int], Any]:
    """mnistcnn.py with its fit() active, one run per seed (keyed like train_dense's, edit
    "fit() active"), trained or read from the cache and the ledger, one after another in this
    process: a CNN's convolutions already keep both cores busy."""
    from .training import train

    return {("fit() active", batch_size, seed): train(*cnn_program(batch_size, epochs, **changes),
                                                      seed) for seed in seeds}


def train_dense(edits: Sequence[str], batches: Sequence[int], seeds: Sequence[int],
                epochs: int = EPOCHS, **changes: Any) -> dict[tuple[str, int, int], Any]:
    """Every (edit, batch, seed) of mnist.py, trained or read from the cache and the ledger, one
    after another in this process (TensorFlow's default threads, as the student ran it)."""
    from .training import train

    return {(edit, batch, seed): train(*dense_edit(edit, batch, epochs, **changes), seed)
            for edit in edits for batch in batches for seed in seeds}


def provenance_rows() -> list[dict[str, str]]:
    """The provenance table: file, commit (short), what it does."""
    return [{"file": name, "commit": info["commit"][:7], "what it does": info["what"]}
            for name, info in FILES.items()]


# ------------------------------------------------------------------------------------------------
# The runs as a table, and what they say about the recorded numbers
# ------------------------------------------------------------------------------------------------

METRICS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss")
RUN_COLUMNS = ("program", "edit", "environment", "batch_size", "seed", "epoch")


def runs_table(runs: Mapping[tuple[str, int, int], Any], program: str = "mnist.py",
               environment: str = "project (engine)"):
    """One row per run and epoch (snapshot; epoch 0 is the untrained network): program, edit,
    environment, batch, seed, epoch, and validation and test accuracy and loss. `runs` maps
    (edit, batch_size, seed) to a training.TrainResult."""
    import pandas as pd

    rows = [{"program": program, "edit": edit, "environment": environment, "batch_size": batch,
             "seed": seed, "epoch": epoch, **{m: snap[m] for m in METRICS}}
            for (edit, batch, seed), run in runs.items()
            for epoch, snap in sorted(run.snapshots.items())]
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, *METRICS])


def epoch_tests(table, recorded: Mapping[str, float], by: Sequence[str] = ("edit", "batch_size"),
                confidence: float = 0.95):
    """For each group (`by`) and epoch, the calibrated reproduction test (stats.reproduction_test)
    of a recorded test (accuracy, loss) as one new run of the program at that epoch: runs, mean
    accuracy and loss, their prediction intervals, the p-value and whether it passes. Groups of
    fewer than two runs are left out."""
    import pandas as pd

    rows = []
    for keys, part in table.groupby([*by, "epoch"], sort=True):
        row = consistency_row(part.test_accuracy, part.test_loss, recorded["accuracy"],
                              recorded["loss"], confidence)
        if row is not None:  # one run predicts nothing about the next: no test
            rows.append({**dict(zip([*by, "epoch"], keys, strict=True)), **row})
    return pd.DataFrame(rows)


def epoch_ranges(epochs: Sequence[int]) -> str:
    """Epochs as ranges (an en dash): [4, 5, 6, 9] -> "4–6, 9"; none -> "none"."""
    epochs, parts = sorted(int(e) for e in epochs), []
    for e in epochs:
        if parts and e == parts[-1][1] + 1:
            parts[-1][1] = e
        else:
            parts.append([e, e])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts) or "none"


def consistency(table, recorded: Mapping[int, Mapping[str, float]],
                by: Sequence[str] = ("edit",), confidence: float = 0.95):
    """Per program (`by`): for each recorded number (keyed by the batch size it was recorded at),
    the epochs at which the program at that batch size is consistent with it (epoch_tests), the
    epoch and p-value of the closest one, and the epoch counts at which every number is: the
    student's claim is one program giving both with only the batch size changed."""
    import pandas as pd

    rows = []
    for keys, part in table.groupby(list(by), sort=False):
        row = dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True))
        found = []
        for batch, number in recorded.items():
            tests = epoch_tests(part[part.batch_size == batch], number, by=(),
                                confidence=confidence)
            found.append(set(tests.epoch[tests.consistent]) if len(tests) else set())
            best = tests.loc[tests.p.idxmax()] if len(tests) else {"epoch": np.nan, "p": np.nan}
            row |= {f"epochs_{batch}": epoch_ranges(found[-1]),
                    f"best_epoch_{batch}": best["epoch"], f"best_p_{batch}": best["p"]}
        row["epochs_all"] = epoch_ranges(set.intersection(*found))
        rows.append(row)
    return pd.DataFrame(rows)


def best_match(table, recorded: Mapping[str, float], batch_size: int,
               first: str = "as committed", confidence: float = 0.95) -> dict[str, Any]:
    """The student's own program that best accounts for a recorded number at its batch size:
    the `first` program (as committed) at its closest epoch if it is consistent there, else the
    edit and epoch with the largest p-value (a choice made on the recorded test numbers, so a
    pass reads "consistent with"). Its runs, means, prediction intervals, p, every epoch at
    which it is consistent, and the other programs consistent with the number at some epoch."""
    tests = epoch_tests(table[table.batch_size == batch_size], recorded, by=("edit",),
                        confidence=confidence)
    own = tests[tests.edit == first]
    pool = own if own.consistent.any() else tests
    best = pool.loc[pool.p.idxmax()]
    same = tests[tests.edit == best.edit]
    also = sorted(set(tests.edit[tests.consistent]) - {best.edit})
    return {"edit": best.edit, "also_consistent": also, "epoch": int(best.epoch),
            "runs": int(best.runs),
            "test_accuracy": float(best.mean_accuracy),
            "accuracy_interval": [float(best.accuracy_low), float(best.accuracy_high)],
            "test_loss": float(best.mean_loss),
            "loss_interval": [float(best.loss_low), float(best.loss_high)],
            "p": float(best.p), "consistent": bool(best.consistent),
            "epochs": epoch_ranges(same.epoch[same.consistent]),
            "candidates": int(tests.edit.nunique()), "epochs_tested": int(tests.epoch.nunique())}


def untrained_signature(seed: int, images, labels, prior=None, net: Net | None = None
                        ) -> dict[str, float]:
    """probes.collapse_signature of mnist.py's network before training: the state of every run's
    epoch 0 with this seed (the engine seeds, then builds the network), the program whose fit()
    never ran."""
    set_seed(seed)
    model = (net or dense_program()[0]).make()
    return collapse_signature(model, images, labels, prior=prior)


def match_signatures(match: Mapping[str, Any], batch_size: int, seeds: Sequence[int],
                     prior=None, **changes: Any):
    """probes.collapse_signature of the networks a best_match names, one row per seed, on the
    test images as that program feeds them (scaled, or raw for an edit that leaves them raw):
    for "fit() not run" the untrained network, otherwise a run of that edit trained for exactly
    that many epochs (the state of the 100-epoch run at that epoch; a run of its own, cached)."""
    import pandas as pd

    from .analyses import signature_of
    from .data import mnist_split
    from .training import train_many

    edit = "as committed" if match["edit"] == "fit() not run" else match["edit"]
    recipe = dense_edit(edit, batch_size, max(match["epoch"], 1), **changes)[1]
    images, labels = mnist_split(scale=recipe.scaled_parts(), flatten=True, split="student",
                                 n_eval=recipe.n_eval)["test"]
    if match["edit"] == "fit() not run":
        rows = [untrained_signature(seed, images, labels, prior) for seed in seeds]
    else:
        runs = train_many([(*dense_edit(edit, batch_size, match["epoch"], **changes), seed)
                           for seed in seeds], desc="networks at the matching epoch")
        rows = [signature_of(run, images, labels, prior=prior) for run in runs]
    return pd.DataFrame(rows).assign(seed=list(seeds))


def match_text(match: Mapping[str, Any]) -> str:
    """A best_match's means and prediction intervals in words (the calibrated rule's: 97.5 % per
    metric, 95 % for the pair): "99.40 % [99.31 %, 99.49 %], loss 0.0230 [0.0190, 0.0270]"."""
    (a_low, a_high), (l_low, l_high) = match["accuracy_interval"], match["loss_interval"]
    return (f"{fmt_pct(match['test_accuracy'])} [{fmt_pct(a_low)}, {fmt_pct(a_high)}], loss "
            f"{match['test_loss']:.4f} [{l_low:.4f}, {l_high:.4f}]")


def program_name(match: Mapping[str, Any]) -> str:
    """A best_match in words: "mnist.py as committed, 5 epochs", "mnist.py with no pixel scaling,
    2 epochs", "mnistcnn.py with fit() active, 12 epochs" (a match whose "program" is
    mnistcnn.py), or the program whose fit() never ran (edit "fit() not run")."""
    name = match.get("program", "mnist.py")  # mnistcnn.py's match names its program
    if match["edit"] == "fit() not run":
        return f"{name} with its fit() not run (the untrained network)"
    edit = "as committed" if match["edit"] == "as committed" else f"with {match['edit']}"
    return f"{name} {edit}, {match['epoch']} epoch{'s' if match['epoch'] != 1 else ''}"


# ------------------------------------------------------------------------------------------------
# The control: the standalone runner in the project's environment and in the student's
# ------------------------------------------------------------------------------------------------

STUDENT_VENV = ROOT / ".venv-student"
STUDENT_PINS = ROOT / "requirements-student.txt"


def student_versions() -> dict[str, str]:
    """The student's versions, as requirements-student.txt pins them."""
    pins = (line.split("#")[0].strip() for line in STUDENT_PINS.read_text().splitlines())
    return dict(pin.split("==") for pin in pins if pin)


def control_run(program: str, batch_size: int, seed: int, environment: str,
                epochs: int = EPOCHS, validation: bool = True) -> dict:
    """One run of the standalone runner (student_runner) in the "project" environment or the
    "student" one (make student-env), cached and recorded in the ledger under the runner's code,
    the environment's versions and the arguments: per epoch, validation and test scores."""
    if environment == "project":
        versions = package_versions()
    elif environment == "student":
        versions = student_versions()
    else:
        raise ValueError(f"environment must be 'project' or 'student', not {environment!r}")
    return _control_run(program, batch_size, seed, environment, versions, epochs, validation)


@cached
def _control_run(program: str, batch_size: int, seed: int, environment: str,
                 versions: Mapping[str, str], epochs: int, validation: bool) -> dict:
    python = Path(sys.executable) if environment == "project" else STUDENT_VENV / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} is missing: run `make student-env` first (the control "
                                "runs in the student's environment need it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        command = [str(python), "-m", runner_main.__module__, program, "--batch",
                   str(batch_size), "--epochs", str(epochs), "--seed", str(seed),
                   "--out", str(out), *([] if validation else ["--no-validation"])]
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True)
        record = json.loads(out.read_text())
    def named(packages):  # tensorflow-cpu is TensorFlow (Linux x86-64 wheels without CUDA)
        return {k.replace("tensorflow-cpu", "tensorflow"): v for k, v in packages.items()}

    installed = {k: v for k, v in named(record["packages"]).items() if k in named(versions)}
    if environment == "student" and installed != named(versions):
        raise RuntimeError(f"{python} has {installed}, not the pinned {versions}: rebuild it "
                           "(rm -r .venv-student; make student-env)")
    return {**record, "environment": environment}


def control_table(records: Sequence[Mapping[str, Any]]):
    """Runner records as rows like runs_table's (program file, edit "as committed" or "no
    validation data", environment "project (runner)" or "student (runner)")."""
    import pandas as pd

    files = {"dense": "mnist.py", "cnn": "mnistcnn.py"}
    rows = [{"program": files[r["program"]],
             "edit": "as committed" if r.get("validation", True) else "no validation data",
             "environment": f"{r['environment']} (runner)", "batch_size": r["batch_size"],
             "seed": r["seed"],
             "epoch": e["epoch"], **{m: e[m] for m in METRICS}}
            for r in records for e in r["per_epoch"]]
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, *METRICS])


def runner_against_engine(controls, engine, epoch: int, confidence: float = 0.95):
    """Each runner run (a `control_table` row per environment and seed) at `epoch` as one new
    run of the engine's program (`engine`, a `runs_table` of the same program, batch and epoch):
    its test accuracy and loss, the engine's prediction intervals, p and whether it is
    consistent (stats.consistency_row). Does the standalone runner, in either environment, draw
    from the same distribution as the engine's seeds?"""
    import pandas as pd

    programs = engine[["program", "edit"]].drop_duplicates()
    if len(programs) != 1:
        raise ValueError(f"the engine's table holds {len(programs)} programs; pass one program's "
                         "runs")
    ours = engine[engine.epoch == epoch]
    if controls[controls.epoch == epoch].empty:
        raise ValueError(f"the runner has no scores after epoch {epoch}")
    rows = []
    for r in controls[controls.epoch == epoch].itertuples():
        same = ours[ours.batch_size == r.batch_size]
        row = consistency_row(same.test_accuracy, same.test_loss, r.test_accuracy, r.test_loss,
                              confidence)
        if row is None:
            raise ValueError(f"the engine has {len(same)} run(s) at batch {r.batch_size}, epoch "
                             f"{epoch}: at least two are needed to predict a new one")
        rows.append({"environment": r.environment, "seed": r.seed, "epoch": epoch,
                     "test_accuracy": r.test_accuracy, "test_loss": r.test_loss, **row})
    return pd.DataFrame(rows)


def cnn_record(table, match: Mapping[str, Any], checks, versions) -> dict[str, Any]:
    """Chapter 04's `student_program` record (records.StudentCnn) in plain JSON types: the
    engine's runs (`table`, a runs_table), the epoch closest to the student's number
    (`best_match`), the runner's runs against the engine (`runner_against_engine`) and the paired
    effect of the student's versions (`environment_effect`; empty when one environment ran)."""
    last = table[table.epoch == table.epoch.max()]
    runner = [{"environment": str(r.environment), "seed": int(r.seed),
               "test_accuracy": float(r.test_accuracy), "test_loss": float(r.test_loss),
               "p": float(r.p), "consistent": bool(r.consistent)} for r in checks.itertuples()]
    return {"best_match": {"program": "mnistcnn.py", **match}, "seeds": int(last.seed.nunique()),
            "epochs": int(table.epoch.max()), "final_accuracy": float(last.test_accuracy.mean()),
            "final_loss": float(last.test_loss.mean()), "runner": runner,
            "versions_accuracy_max": None if versions.empty
            else float(versions.final_accuracy_max.max())}


def environment_effect(controls):
    """Paired by seed, how far a second environment's runs (any `environment` but the first)
    move the numbers from the first's: per batch size, the seeds paired, the mean and largest
    difference in final test accuracy and loss, and the largest over every epoch. Empty when
    only one environment ran (the smoke profile)."""
    import pandas as pd

    names = list(dict.fromkeys(controls.environment))
    wide = controls.pivot_table(index=["batch_size", "seed", "epoch"], columns="environment",
                                values=["test_accuracy", "test_loss"])
    rows = []
    for other in names[1:]:
        diff = pd.DataFrame({m: wide[m][other] - wide[m][names[0]]
                             for m in ("test_accuracy", "test_loss")}).dropna()
        for batch, part in diff.groupby(level="batch_size"):
            last = part.xs(part.index.get_level_values("epoch").max(), level="epoch")
            rows.append({"compared": f"{other} - {names[0]}", "batch_size": batch,
                         "seeds": len(last), "final_accuracy_mean": last.test_accuracy.mean(),
                         "final_accuracy_max": last.test_accuracy.abs().max(),
                         "final_loss_max": last.test_loss.abs().max(),
                         "any_epoch_accuracy_max": part.test_accuracy.abs().max()})
    return pd.DataFrame(rows, columns=["compared", "batch_size", "seeds", "final_accuracy_mean",
                                       "final_accuracy_max", "final_loss_max",
                                       "any_epoch_accuracy_max"])
