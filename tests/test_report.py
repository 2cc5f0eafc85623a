"""The HTML export: one self-contained report/index.html with every chapter, and one page each."""

import re

import nbformat
import pytest

import helpers


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return helpers.build_report(out=out), helpers.chapter_notebooks()


def image_outputs(path):
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)


def test_index_holds_every_chapter_in_order_behind_a_table_of_contents(report):
    index, notebooks = report
    html = index.read_text()
    anchors = [f'id="chapter-{p.stem[:2]}"' for p in notebooks]
    positions = [html.find(a) for a in anchors]
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    for p in notebooks:
        assert f'href="#chapter-{p.stem[:2]}"' in html
        assert (index.parent / f"{p.stem}.html").exists()


def test_every_figure_is_embedded_and_nothing_is_fetched_for_images(report):
    index, notebooks = report
    html = index.read_text()
    embedded = re.findall(r'<img[^>]*src="data:image/png;base64,', html)
    assert len(embedded) == sum(image_outputs(p) for p in notebooks) > 0
    assert not re.findall(r'<img[^>]*src="(?:https?:|file:|\.\.?/)', html)


def test_no_cell_shows_an_error_and_hidden_inputs_stay_hidden(report):
    index, _ = report
    html = index.read_text()
    assert "Traceback" not in html and 'data-mime-type="application/vnd.jupyter.error"' not in html
    assert "findings = display(" not in html  # a remove-input cell's code


def test_the_pages_open_offline_with_no_script_or_stylesheet_from_a_network(report):
    index, notebooks = report
    for page in [index] + [index.parent / f"{p.stem}.html" for p in notebooks]:
        html = page.read_text()
        assert not re.findall(r'<(?:script|link|iframe)[^>]*(?:src|href)="(?:https?:)?//', html)


def test_no_chapter_writes_latex_that_the_offline_report_could_not_render(report):
    _, notebooks = report
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            texts = [cell.source] if cell.cell_type == "markdown" else [
                o.get("data", {}).get("text/markdown", "") for o in cell.get("outputs", [])]
            for text in texts:
                assert not re.search(r"\$[^$\s][^$]*\$|\\\(|\\\[", "".join(text)), path.name


def test_the_index_opens_with_the_reproduction_table_and_the_comparison(report):
    index, _ = report
    html = index.read_text()
    first_chapter = html.find('id="chapter-01"')
    for heading in ("The student&#39;s numbers: reproduced?", "compared on equal terms",
                    "What survives of the student&#39;s claims"):
        position = max(html.find(heading), html.find(heading.replace("&#39;", "'")))
        assert 0 < position < first_chapter, heading


def test_the_html_stores_no_progress_bar_path_repr_or_cache_chatter(report):
    index, notebooks = report
    for page in [index] + [index.parent / f"{p.stem}.html" for p in notebooks]:
        html = page.read_text()
        assert not re.search(r"\d+(?:\.\d+)?it/s|\d+%\|[█▉▊▋▌▍▎▏ ]*\|", html), page.name
        assert "PosixPath(" not in html and "WindowsPath(" not in html, page.name
        assert "(cached)" not in html, page.name
        assert '<script type="application/vnd.jupyter.widget-view+json">' not in html, page.name


def test_code_is_folded_away_and_prose_tables_and_figures_stay_in_view(report):
    index, notebooks = report
    html = index.read_text()
    shown = sum(c.cell_type == "code" and "remove-input" not in c.metadata.get("tags", [])
                for p in notebooks for c in nbformat.read(p, as_version=4).cells)
    folds = re.findall(r'<details class="code-fold"><summary>code, \d+ lines?</summary>(.*?)'
                       r"</details>", html, flags=re.S)
    assert len(folds) == shown > 0  # every shown code cell, each behind its own toggle
    assert all("jp-InputArea" in f and "jp-OutputArea" not in f and "<img" not in f
               for f in folds)  # the code alone: its outputs are outside the fold
    outside = re.sub(r'<details class="code-fold">.*?</details>', "", html, flags=re.S)
    assert "<img" in outside and "<table" in outside and "<h2" in outside
