"""A chapter re-executed from the committed ledger alone gives the committed notebook.

The chapter runs in a copy of the project (so nothing committed is overwritten) in the full
profile, with an empty local cache and MNIST_LEDGER=only: a training run, an analysis or a
retraining for weights that the ledger lacks fails the chapter (ledger.LedgerMiss). Its outputs
must then equal the committed ones, cell by cell, and the results it writes the committed
results. `make test` replays the chapters in REPLAYED; `make check-ledger`
(MNIST_REPLAY=all) replays all five, as a fresh clone's `make report` would.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_report import ledger
from mnist_report.config import COMMITTED_RESULTS, DATA, ROOT

# make test replays chapter 04 (training runs, cached analyses of their weights, figures; ~21 s,
# the quickest real chapter); `make check-ledger` replays every chapter (MNIST_REPLAY=all, or a
# comma-separated list of chapters).
REPLAYED = ("04_cnn",)
NOT_COPIED = (".git", ".venv", ".venv-student", ".cache", "data", "report", "scratch",
              "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints")


def chapters() -> list[str]:
    wanted = os.environ.get("MNIST_REPLAY", "")
    every = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if wanted == "all":
        return every
    return [c for c in (wanted.split(",") if wanted else REPLAYED) if c in every]


STYLER_ID = re.compile(r"T_[0-9a-f]{5}")  # pandas' Styler names each table with a random id
ADDRESS = re.compile(r" at 0x[0-9a-f]+>")  # an object's text/plain repr (behind its HTML)


def outputs(notebook: dict) -> list[list[dict]]:
    """Each code cell's outputs, without what differs between runs by design (execution counts,
    output metadata, the random ids of pandas' styled tables, memory addresses)."""
    cells = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        outs = [{k: v for k, v in out.items() if k not in ("execution_count", "metadata")}
                for out in cell.get("outputs", [])]
        text = ADDRESS.sub(" at 0xADDRESS>", STYLER_ID.sub("T_table", json.dumps(outs)))
        cells.append(json.loads(text))
    return cells


def results_without_environment(path: Path) -> object:
    data = json.loads(path.read_text())
    return data.get("results", data) if isinstance(data, dict) else data


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay") / "project"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    if DATA.exists():
        (root / "data").symlink_to(DATA)
    return root


@pytest.mark.skipif(not ledger.files("full"), reason="no committed ledger")
@pytest.mark.parametrize("chapter", chapters())
def test_a_chapter_replays_from_the_ledger_alone(copy, tmp_path, chapter):
    committed = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    env.update(MNIST_PROFILE="full", MNIST_LEDGER="only", MNIST_PROGRESS="0",
               MNIST_CACHE_DIR=str(tmp_path / "empty-cache"),
               PYTHONPATH=os.pathsep.join([str(copy), env.get("PYTHONPATH", "")]))
    executed = tmp_path / f"{chapter}.ipynb"
    run = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=-1", "--ExecutePreprocessor.kernel_name=mnist-report",
         "--output", str(executed), str(copy / "notebooks" / f"{chapter}.ipynb")],
        env=env, capture_output=True, text=True, cwd=copy)
    assert run.returncode == 0, f"{chapter} did not replay from the ledger:\n{run.stderr[-3000:]}"
    mine, theirs = outputs(json.loads(executed.read_text())), outputs(committed)
    assert len(mine) == len(theirs)
    differing = [i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b]
    assert not differing, (f"{chapter}: code cells {differing} differ from the committed "
                           f"outputs; first: {json.dumps(mine[differing[0]])[:800]}")
    prefix = chapter[:2]
    for path in sorted((copy / "results").glob(f"{prefix}_*.json")):
        assert results_without_environment(path) == results_without_environment(
            COMMITTED_RESULTS / path.name), path.name


def test_every_chapter_has_its_ledger_file():
    every = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert every <= {p.stem for p in ledger.files("full")}
    assert every <= {p.stem for p in ledger.files("smoke")}, \
        "run `make smoke-ledger`: make test replays the smoke profile's runs from it"
