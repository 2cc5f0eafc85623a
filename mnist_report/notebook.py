"""What every chapter's setup cell does: plot style, seeds, and a printed record of the profile."""

from __future__ import annotations

from .config import SEED, quiet_tensorflow_import, rel, set_seed, settings
from .plots import set_style


def describe_profile() -> str:
    """One line that records, in the notebook's output, which profile produced it."""
    s = settings()
    return (f"Profile: {s.profile} | figures -> {rel(s.figures)}/ | results -> {rel(s.results)}/ "
            f"| seed {SEED}")


def setup_notebook(seed: int = SEED, keras: bool = False) -> None:
    """Plot style, seeds, TensorFlow imported quietly, and a printed record of the profile
    (checked by the hygiene tests)."""
    quiet_tensorflow_import()
    set_style()
    set_seed(seed, keras=keras)
    print(describe_profile())


def runs_note() -> str:
    """One line for a chapter's last cell: how many training runs this execution trained and how
    many it took from the training cache (instead of a "(cached)" line per run)."""
    from .training import run_counts

    n = run_counts()
    total = n["cached"] + n["trained"]
    return (f"Training runs used by this execution: {total:,} ({n['trained']:,} trained now, "
            f"{n['cached']:,} from the training cache).")
