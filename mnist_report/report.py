"""Report export: the executed notebooks as HTML, one page per chapter and one self-contained
report/index.html (every chapter in order, a table of contents, figures embedded as data URIs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import ROOT

REPORT = ROOT / "report"


def chapter_notebooks(folder: Path | None = None) -> list[Path]:
    """The chapters, notebooks/NN_name.ipynb, in order."""
    return sorted(Path(folder or ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# nbconvert's "lab" page, without the three scripts it would fetch from a CDN (require.js, MathJax,
# Mermaid): the report must open from disk with no network, and it needs none of them (no widgets,
# no diagrams, and no LaTeX: tests/test_report.py keeps math out of the chapters' text).
# Code is folded: each code cell's source sits in a closed <details> ("code, N lines"), so a
# reader sees prose, tables and figures and opens the code where they want it; outputs stay in
# view. The notebooks themselves keep their code visible.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}
<style>
details.code-fold > summary { cursor: pointer; color: #57606a; font: 12px monospace;
  margin: 2px 0 2px 72px; }
details.code-fold[open] > summary { margin-bottom: 4px; }
</style>
{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block input_group -%}
<details class="code-fold"><summary>code, {{ cell.source.splitlines() | length }} \
line{{ 's' if cell.source.splitlines() | length != 1 }}</summary>
{{ super() }}
</details>
{%- endblock input_group -%}
"""


def _html_exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    config.HTMLExporter.embed_images = True
    # no "In [n]:" / "Out[n]:" prompts: a reader of the report does not execute cells
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    return HTMLExporter(config=config, template_file="offline.html.j2",
                        extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})])


def _chapter_title(nb) -> str:
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    return first.source.splitlines()[0].lstrip("# ").strip()


def build_report(notebooks: Sequence[Path] | None = None, out: Path | None = None) -> Path:
    """Export every chapter to `out`/NN_name.html and all of them, in order and behind a table of
    contents and the report at a glance (the reproduction table, the comparison and the verdicts,
    from the committed results), to `out`/index.html; returns the index. Only the notebooks'
    saved outputs are used (nothing is executed); images are embedded, so the pages open from
    disk without a network."""
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    from .summary import fragments

    notebooks = list(notebooks or chapter_notebooks())
    out = Path(out or REPORT)
    out.mkdir(parents=True, exist_ok=True)
    exporter = _html_exporter()
    toc = ["# MNIST: how architecture and batch size decide accuracy", "",
           f"A reproducible report in {len(notebooks)} chapters. Contents:", ""]
    cells, metadata = [], None
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        metadata = metadata or nb.metadata
        (out / f"{path.stem}.html").write_text(exporter.from_notebook_node(nb)[0])
        anchor = f"chapter-{path.stem[:2]}"
        toc.append(f"1. [{_chapter_title(nb)}](#{anchor})")
        cells.append(new_markdown_cell(f'<a id="{anchor}"></a>'))
        cells.extend(nb.cells)
    blocks = fragments()  # the README's tables and verdicts, from the committed results
    glance = new_markdown_cell("\n\n".join([
        "## The report at a glance", "### The student's numbers: reproduced?",
        blocks["reproduction"], "### The models, compared on equal terms", blocks["models"],
        "### What survives of the student's claims", blocks["verdicts"],
        "Chapter 05 gives the evidence for each verdict; the chapters follow."]))
    combined = new_notebook(cells=[new_markdown_cell("\n".join(toc)), glance, *cells],
                            metadata=metadata)
    body, _ = exporter.from_notebook_node(combined,
                                          resources={"metadata": {"name": "MNIST report"}})
    index = out / "index.html"
    index.write_text(body)
    return index
