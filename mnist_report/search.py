"""The earlier search (chapter 02, section 7): the dense programs a Keras user copies from,
crossed with the deviations a student makes, run at the student's two batch sizes and ranked by
their distance to the student's test numbers; the closest confirmed with more seeds.

Before the student's repository was read, this search was the report's reproduction. A match it
finds was picked by the numbers it is tested against, so it reads "consistent with": it shows a
number is attainable, not what the student ran (`student` runs the student's own program).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The programs (layers and dropout as their examples write them), the activations each is found
# with, and each optimizer at its Keras default learning rate: TensorFlow 2's defaults, and
# Adadelta also at Keras 2's 1.0 (TensorFlow 2's 0.001 barely trains).
PROGRAMS = {"Keras MLP example": {"hidden": (512, 512), "dropout": 0.2},
            "TF 2 quickstart": {"hidden": (128,), "dropout": 0.2}}
ACTIVATIONS = {"Keras MLP example": ("relu",), "TF 2 quickstart": ("relu", "sigmoid")}
OPTIMIZERS = {"SGD": ("sgd", 0.01), "RMSprop": ("rmsprop", 1e-3), "Adam": ("adam", 1e-3),
              "Adagrad": ("adagrad", 1e-3), "Adadelta (TF 2)": ("adadelta", 1e-3),
              "Adadelta (Keras 2)": ("adadelta", 1.0)}
CONFIG = ["program", "activation", "inputs", "optimizer"]  # what names a searched program


def screened_programs(smoke: bool = False):
    """Every (program, activation, inputs, optimizer) of the search, one row each; in the smoke
    profile a slice (the quickstart with ReLU, SGD and Adam)."""
    import pandas as pd

    rows = pd.DataFrame([{"program": p, "activation": a, "inputs": i, "optimizer": o}
                         for p in PROGRAMS for a in ACTIVATIONS[p] for i in ("scaled", "raw")
                         for o in OPTIMIZERS])
    if smoke:
        rows = rows.query("program == 'TF 2 quickstart' and activation == 'relu' "
                          "and optimizer in ['SGD', 'Adam']")
    return rows


def program(row, batch_size: int, epochs: int, snapshots: Sequence[int] = (),
            n_train: int | None = None) -> tuple[Any, Any]:
    """(net, recipe) of one searched program: Keras defaults, all 60,000 training images (as the
    examples train), scored after each epoch in `snapshots`."""
    from .models import Net, dense_net
    from .training import Recipe

    name, learning_rate = OPTIMIZERS[row.optimizer]
    net = Net(dense_net, **PROGRAMS[row.program], activation=row.activation)
    return net, Recipe(batch_size=int(batch_size), epochs=int(epochs), optimizer=name,
                       learning_rate=learning_rate, scale=row.inputs == "scaled",
                       all_train=True, n_train=n_train, snapshots=tuple(snapshots))


def run_programs(rows, seeds: Sequence[int], batch_sizes: Sequence[int],
                 snapshots: Sequence[int], n_train: int | None = None, desc: str = "screen"):
    """Train every (program, batch size, seed) for max(snapshots) epochs with train_many; one
    row per snapshot epoch: the program, batch size, seed, epochs, test scores, seconds and
    whether the run diverged."""
    import pandas as pd

    from .training import train_many

    keys = [(row, bs, seed) for row in rows.itertuples(index=False) for bs in batch_sizes
            for seed in seeds]
    results = train_many([(*program(row, bs, max(snapshots), snapshots, n_train), seed)
                          for row, bs, seed in keys], desc=desc)
    return pd.DataFrame([
        {**{k: getattr(row, k) for k in CONFIG}, "batch_size": bs, "seed": seed, "epochs": e,
         "test_accuracy": snap["test_accuracy"], "test_loss": snap["test_loss"],
         "seconds": snap["seconds"], "diverged": r.diverged_at is not None}
        for (row, bs, seed), r in zip(keys, results, strict=True)
        for e, snap in sorted(r.snapshots.items())])


def with_distance(table, targets: Mapping[int, tuple[float, float]]):
    """The table with each row's distance (stats.distance) to the student's (accuracy, loss) at
    its batch size."""
    from .stats import distance

    return table.assign(distance=[distance(acc, loss, *targets[bs]) for acc, loss, bs in zip(
        table.test_accuracy, table.test_loss, table.batch_size, strict=True)])


def closest(means, batch_size: int, n: int):
    """The n programs closest to the student's number at `batch_size`, each at its best epoch."""
    part = means[means.batch_size == batch_size].sort_values("distance")
    return part.drop_duplicates(CONFIG).head(n)


def closest_pairs(means, batch_sizes: Sequence[int], n: int):
    """The n programs (at one epoch count) whose larger distance over both batch sizes is least:
    one program for both numbers, only the batch size changed. A program with no distance at
    one batch size (a diverged run) ranks last."""
    pairs = (means.pivot_table(index=CONFIG + ["epochs"], columns="batch_size",
                               values="distance")
             .assign(pair=lambda t: t[list(batch_sizes)].max(axis=1, skipna=False))
             .sort_values("pair").reset_index())
    return pairs.drop_duplicates(CONFIG).head(n)


def confirm(rows, seeds: Sequence[int], n_train: int | None = None):
    """Train each row (a program at a batch size and an epoch count) with `seeds`, each for
    exactly its epochs; returns (keys, runs, table): the (row, seed) keys, the runs, and one
    table row per run."""
    import pandas as pd

    from .training import train_many

    keys = [(row, seed) for row in rows.itertuples(index=False) for seed in seeds]
    runs = train_many([(*program(row, row.batch_size, row.epochs, (), n_train), seed)
                       for row, seed in keys], desc="confirmations")
    table = pd.DataFrame([{**row._asdict(), "seed": seed, "test_accuracy": r.test_accuracy,
                           "test_loss": r.test_loss, "seconds": r.train_seconds,
                           "diverged": r.diverged_at is not None}
                          for (row, seed), r in zip(keys, runs, strict=True)])
    return keys, runs, table


def verdict_rows(confirmed, targets: Mapping[int, tuple[float, float]]):
    """Per confirmed program: its seeds, mean test accuracy and loss with their 95 % prediction
    intervals for one new run (stats.reproduction_test, each at 97.5 %), the p-value, whether
    the student's number is consistent with it, and its distance; by batch size, closest first."""
    import pandas as pd

    from .stats import consistency_row

    keys = CONFIG + ["batch_size", "epochs"]
    columns = {"seeds": "runs", "test_accuracy": "mean_accuracy", "accuracy_low": "accuracy_low",
               "accuracy_high": "accuracy_high", "test_loss": "mean_loss", "loss_low": "loss_low",
               "loss_high": "loss_high", "p": "p", "consistent": "consistent"}
    rows = []
    for key, group in confirmed.groupby(keys):
        row = consistency_row(group.test_accuracy, group.test_loss, *targets[key[len(CONFIG)]])
        if row is not None:  # a single run is no test
            rows.append({**dict(zip(keys, key, strict=True)),
                         **{name: row[field] for name, field in columns.items()}})
    return with_distance(pd.DataFrame(rows), targets).sort_values(["batch_size", "distance"])


def verdict_of(verdicts, row, batch_size: int):
    """The verdict row of the program `row` names (its CONFIG and epochs) at `batch_size`."""
    same = (verdicts[CONFIG + ["epochs"]] == row[CONFIG + ["epochs"]].to_numpy()).all(axis=1)
    return verdicts[same & (verdicts.batch_size == batch_size)].iloc[0]


def record(row) -> dict[str, Any]:
    """A verdict row as the results file stores it (summary.reproduction_table reads it)."""
    return {"configuration": {k: row[k] for k in CONFIG} | {"epochs": int(row.epochs)},
            "seeds": int(row.seeds), "test_accuracy_mean": row.test_accuracy,
            "accuracy_interval": [row.accuracy_low, row.accuracy_high],
            "test_loss_mean": row.test_loss, "loss_interval": [row.loss_low, row.loss_high],
            "distance": row.distance, "p": row.p, "consistent": bool(row.consistent)}


def runs_of(keys: Iterable[tuple[Any, int]], runs: Iterable[Any], row) -> list[tuple[Any, Any]]:
    """The (key, run) pairs of confirm's output that belong to the program `row` names (its
    CONFIG and epochs), at every batch size."""
    return [(key, r) for (key, seed), r in zip(keys, runs, strict=True)
            if all(getattr(key, k) == row[k] for k in [*CONFIG, "epochs"])]
