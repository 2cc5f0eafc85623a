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
