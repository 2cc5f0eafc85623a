"""Project-level promises: one pinned dependency list, and committed notebooks that are one
clean, full-profile, top-to-bottom run."""

import re
from pathlib import Path

import nbformat
import pytest

import helpers

NOTEBOOKS = sorted((helpers.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 5 * 1024 * 1024


def test_every_requirement_is_pinned_exactly():
    lines = [line.split("#")[0].strip() for line in
             (helpers.ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line]
    assert reqs, "requirements.txt is empty"
    for req in reqs:
        assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==[0-9][^ ;]*( *;.*)?$", req), req


def test_conda_environment_uses_the_same_list():
    text = (helpers.ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "-r requirements.txt" in text


def test_there_are_committed_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_data_exploration.ipynb"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    path: Path = request.param
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return path, nb


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_executed_top_to_bottom_without_gaps(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: {counts}"


def test_no_error_outputs(notebook):
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} code cell {i + 1}: {out.get('ename')}"
            assert "Traceback (most recent call last)" not in out.get("text", "")


def test_executed_in_the_full_profile(notebook):
    path, nb = notebook
    texts = ["".join(o.get("text", "")) for c in code_cells(nb) for o in c.outputs]
    profile_lines = [t for t in texts if "Profile: " in t]
    assert profile_lines, f"{path.name}: no 'Profile:' line (call helpers.setup_notebook())"
    assert all("Profile: full" in t for t in profile_lines), f"{path.name}: {profile_lines}"


def test_outputs_store_no_progress_bar_path_repr_or_cache_chatter(notebook):
    """What a reader should never see in a committed notebook: a stored progress bar (tqdm's
    "it/s" or its widget), a path's repr, or a training log's "(cached)"."""
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.outputs:
            data = out.get("data", {})
            text = "".join(out.get("text", "")) + "".join(
                "".join(v) if isinstance(v, list) else str(v) for k, v in data.items()
                if k.startswith("text/"))
            where = f"{path.name} code cell {i + 1}"
            assert "application/vnd.jupyter.widget-view+json" not in data, f"{where}: a widget"
            assert not re.search(r"\d\s*it/s|s/it\b", text), f"{where}: a progress bar"
            assert "PosixPath(" not in text and "WindowsPath(" not in text, f"{where}: a path"
            assert "(cached)" not in text, f"{where}: cache chatter"


def test_a_chapter_that_trains_says_once_how_many_runs_came_from_the_cache(notebook):
    path, nb = notebook
    source = "\n".join(c.source for c in code_cells(nb))
    if not re.search(r"\btrain(?:_many)?\(", source):
        return
    said = ["".join(o.get("text", "")) for c in code_cells(nb) for o in c.outputs
            if "Training runs used by this execution" in "".join(o.get("text", ""))]
    assert len(said) == 1, f"{path.name}: print(helpers.runs_note()) once, in the last cell"


def test_file_size_under_limit(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_BYTES


def test_saved_figures_are_committed_and_named_after_the_chapter(notebook):
    path, nb = notebook
    names = re.findall(r"save_fig\(\s*[\"'](\d\d_[a-z0-9_]+)", "\n".join(
        c.source for c in code_cells(nb)))
    for name in names:
        assert name[:2] == path.name[:2], f"{name} saved by {path.name}"
        assert (helpers.ROOT / "figures" / f"{name}.png").exists(), f"figures/{name}.png missing"


def test_readme_quotes_the_students_numbers_as_helpers_records_them():
    readme = (helpers.ROOT / "README.md").read_text()
    for run in helpers.STUDENT.values():
        assert f"{100 * run['accuracy']:.2f} %" in readme
    assert f"test loss {helpers.STUDENT['cnn']['loss']}" in readme


FORMATTER = re.compile(r"fmt|format|pct|_text$|^describe|_markdown$")


def test_no_formatter_is_defined_twice():
    """Number and text formatters live once in the package (the notebooks define no functions at
    all: tests/test_notebook_style.py), so one style of "99.20 %" or "[low, high]" is kept."""
    import ast

    homes: dict[str, list[str]] = {}
    for path in sorted((helpers.ROOT / "mnist_report").glob("*.py")) + [
            helpers.ROOT / "helpers.py", helpers.ROOT / "bench.py"]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and FORMATTER.search(node.name.lstrip("_")):
                homes.setdefault(node.name.lstrip("_"), []).append(path.name)
    assert homes, "the pattern finds no formatter: it has gone stale"
    twice = {name: files for name, files in homes.items() if len(files) > 1}
    assert not twice, f"formatters defined more than once: {twice}"
