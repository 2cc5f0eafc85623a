"""What every chapter's setup cell does: plot style, seeds, and a printed record of the profile."""

from __future__ import annotations

import re

from .config import SEED, quiet_tensorflow_import, rel, set_seed, settings
from .plots import set_style

SNAKE = re.compile(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)+")  # test_accuracy, p_value, val_gain_low


def describe_profile() -> str:
    """One line that records, in the notebook's output, which profile produced it."""
    s = settings()
    return (f"Profile: {s.profile} | figures -> {rel(s.figures)}/ | results -> {rel(s.results)}/ "
            f"| seed {SEED}")


def readable(label):
    """A table header as a reader sees it: 'test_accuracy' -> 'test accuracy'. Only a snake_case
    name changes; a label that is already text ('mnist_cnn.py, Adam') keeps its underscores."""
    if isinstance(label, str) and SNAKE.fullmatch(label):
        return label.replace("_", " ")
    return label


def readable_tables() -> None:
    """Show tables in this notebook with readable labels (rows, columns and their names): the
    code keeps its snake_case names, the rendered table drops the underscores."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:  # not in a notebook
        return
    import pandas as pd
    from pandas.io.formats.style import Styler

    html = shell.display_formatter.formatters["text/html"]
    html.for_type(pd.DataFrame, lambda df: df.rename(index=readable, columns=readable).rename_axis(
        index=[readable(n) for n in df.index.names],
        columns=[readable(n) for n in df.columns.names])._repr_html_())
    html.for_type(Styler, lambda styler: styler.format_index(readable, axis=0).format_index(
        readable, axis=1).format_index_names(readable, axis=0).format_index_names(
        readable, axis=1)._repr_html_())


def setup_notebook(seed: int = SEED, keras: bool = False) -> None:
    """Plot style, seeds, TensorFlow imported quietly, readable table headers, and a printed
    record of the profile (checked by the hygiene tests)."""
    quiet_tensorflow_import()
    set_style()
    set_seed(seed, keras=keras)
    readable_tables()
    print(describe_profile())


def runs_note() -> str:
    """One line for a chapter's last cell: how many training runs this execution trained and how
    many it took from the local cache or the committed ledger (instead of a "(cached)" line per
    run; the two sources are not told apart, so a replay from the ledger prints the same)."""
    from .training import run_counts

    n = run_counts()
    total = n["cached"] + n["trained"]
    return (f"Training runs used by this execution: {total:,} ({n['trained']:,} trained now, "
            f"{n['cached']:,} from the cache or the ledger).")
