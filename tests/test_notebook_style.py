"""The chapters' style, measured on the committed notebooks (issue 29): short code cells, no
functions defined in a notebook, one hiding rule for computed prose, numbered figures, and no
cell that changes state another cell reads (a reader may rerun any cell)."""

import ast
import json
import statistics

import pytest

import helpers

# Every chapter, on the figure, facts and claims layers, and the skeleton a new chapter starts from.
STYLED = ("01_data_exploration", "02_dense_network", "03_batch_size_sweep", "04_cnn",
          "05_comparison", "../docs/chapter_template")
MAX_LINES, MAX_MEDIAN = 30, 6


def code_cells(chapter: str) -> list[dict]:
    nb = json.loads((helpers.ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def lines(cell: dict) -> int:
    return sum(bool(line.strip()) for line in source(cell).splitlines())


@pytest.mark.parametrize("chapter", STYLED)
def test_code_cells_are_short(chapter):
    sizes = [lines(c) for c in code_cells(chapter)]
    assert statistics.median(sizes) <= MAX_MEDIAN, f"median {statistics.median(sizes)} lines"
    assert max(sizes) <= MAX_LINES, f"a cell of {max(sizes)} lines"


@pytest.mark.parametrize("chapter", STYLED)
def test_no_function_or_class_is_defined_in_a_notebook(chapter):
    for cell in code_cells(chapter):
        tree = ast.parse(source(cell))
        defined = [n.name for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)]
        assert not defined, f"{defined}: analysis code belongs in mnist_report/"


@pytest.mark.parametrize("chapter", STYLED)
def test_computed_prose_follows_one_hiding_rule(chapter):
    for cell in code_cells(chapter):
        hidden = "remove-input" in cell["metadata"].get("tags", [])
        labelled = source(cell).startswith("# prose:")
        assert hidden == labelled, (f"a prose cell needs both the tag and the label: "
                                    f"{source(cell)[:60]}")
        if hidden:
            assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True


@pytest.mark.parametrize("chapter", STYLED)
def test_every_figure_is_saved_with_a_caption(chapter):
    for cell in code_cells(chapter):
        if "save_fig(" in source(cell):
            assert "caption=" in source(cell), source(cell)[:80]


def assigned_and_read(cell: dict) -> tuple[set[str], set[str], set[str]]:
    """Top-level names a cell binds, names it reads before binding, names it augments (+=)."""
    tree = ast.parse(source(cell))
    bound, read, augmented = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            augmented.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    comprehension = {n.id for c in ast.walk(tree) if isinstance(c, ast.comprehension)
                     for n in ast.walk(c.target) if isinstance(n, ast.Name)}
    return bound - comprehension, read - bound, augmented


@pytest.mark.parametrize("chapter", STYLED)
def test_no_cell_changes_state_that_another_cell_reads(chapter):
    cells = [assigned_and_read(c) for c in code_cells(chapter)]
    owner: dict[str, int] = {}
    for i, (bound, _, augmented) in enumerate(cells):
        for name in augmented:
            assert owner.get(name, i) == i, (f"cell {i} accumulates into {name!r} of cell "
                                             f"{owner[name]}")
        for name in bound:
            shared = any(name in read for j, (_, read, _) in enumerate(cells) if j != i)
            if name in owner and owner[name] != i and shared:
                pytest.fail(f"cell {i} rebinds {name!r}, defined in cell {owner[name]} and read "
                            "by other cells: rerunning either changes what the others see")
            owner.setdefault(name, i)


FIGURE_LAYER = ("helpers.plot_", "helpers.image_grid(", "helpers.misclassified_gallery(")


def test_nearly_every_figure_is_drawn_by_the_figure_layer():
    """Issue 29: >= 90 % of the saved figures come from a `plots` function, over all chapters."""
    figures = [source(c) for chapter in STYLED for c in code_cells(chapter)
               if "save_fig(" in source(c)]
    drawn = [s for s in figures if any(call in s for call in FIGURE_LAYER)]
    assert len(drawn) >= 0.9 * len(figures), [s[:60] for s in figures if s not in drawn]
