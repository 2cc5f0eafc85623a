"""Facts and claims: a chapter's computed numbers in one record, its prose filled from them, and
each claim checked where it is made and again against the committed results.

    facts = helpers.Facts("01_data_exploration")
    facts.add(mlp_mean=0.9852, softmax_mean=0.9284)           # numbers, as computed
    facts.prose("The MLP scores {mlp_mean:pct} against {softmax_mean:pct}.")   # Markdown
    facts.claim("the MLP beats softmax regression", "mlp_mean > softmax_mean")
    facts.save()                                              # results/01_data_exploration.json

- **Formats** (`{name:spec}`): `pct` ("98.52 %"), `pct1` ("98.5 %"), `pct0` ("99 %"), `pts` (a
  signed difference in percentage points, "+0.60" or "−0.21", with a true minus sign), `spct`
  and `spct0` (a signed difference in percent, "+1.23 %", "−4 %"), `points` (unsigned, one
  decimal, "1.3"),
  `points0` and `points2` (unsigned, whole points "32", two decimals "0.09"), `int` ("55,000"),
  `num` (four significant digits), `p` (a p-value, "0.003" or "< 0.001"), `list` and `semilist`
  (items joined by ", " or "; ");
  any Python format spec otherwise. On a sequence, `list:SPEC` and `semilist:SPEC` format each
  item with SPEC ("{p_values:list:.2g}" -> "0.31, 1"), and `span:SPEC` gives its smallest and
  largest item ("{shares:span:pct0}" -> "0 %–35 %", or "100 %" when they are equal). `fmt(value,
  spec)` formats one value the same way outside a template.
- **Thresholds** are named in `config.THRESHOLDS` (significance level, calibration threshold,
  smallest effect of interest) and may be used in templates and claims by name, so a number
  that judges is written once.
- **Claims** are expressions over the facts and thresholds (`"p_value < ALPHA"`). A false claim
  raises ClaimError at once, in the cell that states it, in every profile unless `full_only`
  (a claim about the real experiment that a smoke run's tiny numbers cannot bear out). The
  results file stores the facts and the claims, and tests/test_facts.py re-evaluates every
  committed claim, so a claim the committed numbers contradict fails `make test`.
- **Rerun safety**: adding a fact again replaces it; stating a claim again replaces it.
"""

from __future__ import annotations

import ast
import math
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import THRESHOLDS, settings
from .stats import fmt_pct, signed, signed_pct


class ClaimError(AssertionError):
    """A chapter states something its own numbers contradict."""


def _p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


FORMATS = {
    "pct": fmt_pct,
    "pct1": lambda v: fmt_pct(v, 1),
    "pct0": lambda v: fmt_pct(v, 0),
    "pts": lambda v: signed(100 * v),
    "spct": signed_pct,
    "spct0": lambda v: signed_pct(v, 0),
    "int": lambda v: f"{int(round(v)):,}",
    "num": lambda v: f"{v:,.4g}",
    "p": _p_value,
    "points": lambda v: f"{100 * v:.1f}",
    "points0": lambda v: f"{100 * v:.0f}",
    "points2": lambda v: f"{100 * v:.2f}",
    "list": lambda v: ", ".join(map(str, v)),
    "semilist": lambda v: "; ".join(map(str, v)),
}


class _Formatter(string.Formatter):
    def format_field(self, value: Any, spec: str) -> str:
        return fmt(value, spec)


_JOINS = {"list": ", ", "semilist": "; "}


def fmt(value: Any, spec: str = "") -> str:
    """One value in a house format (the module docstring lists them) or a Python format spec."""
    kind, _, inner = spec.partition(":")
    if inner and kind in _JOINS:
        return _JOINS[kind].join(fmt(v, inner) for v in value)
    if kind == "span":
        low, high = fmt(min(value), inner), fmt(max(value), inner)
        return low if low == high else f"{low}–{high}"
    if spec in FORMATS:
        return FORMATS[spec](value)
    return format(value, spec)


_ALLOWED = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Name, ast.Load,
            ast.Constant, ast.And, ast.Or, ast.Not, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
            ast.USub, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Call, ast.Subscript,
            ast.Tuple, ast.List, ast.Mod, ast.In, ast.NotIn, ast.IfExp)
_FUNCTIONS = {"abs": abs, "min": min, "max": max, "all": all, "any": any, "len": len,
              "round": round, "isnan": math.isnan}


def checked(expression: str, values: Mapping[str, Any]) -> ast.Expression:
    """A claim's parsed form, refused unless it uses only what `evaluate` allows and names only
    facts in `values`, thresholds and the allowed functions."""
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"claim {expression!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name)
                                               and node.func.id in _FUNCTIONS):
            raise ValueError(f"claim {expression!r}: only {sorted(_FUNCTIONS)} may be called")
    missing = ({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
               - {*THRESHOLDS, *_FUNCTIONS, *values})
    if missing:
        raise KeyError(f"claim {expression!r} uses {sorted(missing)}, which are not facts")
    return tree


def evaluate(expression: str, values: Mapping[str, Any]) -> Any:
    """Evaluate a claim: arithmetic, comparisons, and/or/not, indexing and a few functions
    (abs, min, max, all, any, len, round, isnan) over `values` and the thresholds; nothing else
    (no attributes, no imports)."""
    tree = checked(expression, values)
    names = {**THRESHOLDS, **_FUNCTIONS, **values}
    return eval(compile(tree, "<claim>", "eval"), {"__builtins__": {}}, names)  # noqa: S307


class Facts:
    """One chapter's computed numbers, prose and claims (see the module docstring)."""

    def __init__(self, chapter: str):
        self.chapter = chapter
        self.values: dict[str, Any] = {}
        self.claims: dict[str, dict[str, Any]] = {}

    def add(self, **values: Any) -> None:
        """Record computed numbers (a name added again is replaced). Returns None, so a cell
        that ends with it shows nothing."""
        self.values.update(values)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def text(self, template: str) -> str:
        """The template with its {fact:format} fields filled (thresholds by name too)."""
        return _Formatter().vformat(template, (), {**THRESHOLDS, **self.values})

    def prose(self, template: str):
        """The filled template as Markdown, for a computed-prose cell."""
        from IPython.display import Markdown

        return Markdown(self.text(template))

    def claim(self, statement: str, expression: str, full_only: bool = False) -> bool:
        """Check `expression` over the facts now, in the cell that makes the claim; record it
        for the results file (and the test that re-checks committed results). A claim that only
        the full experiment can bear out (`full_only`) is recorded, and in smoke checked only
        for its form (what it may use, and that its names are facts)."""
        self.claims[statement] = {"expression": expression, "full_only": full_only}
        if full_only and settings().smoke:
            checked(expression, self.values)
            return True
        holds = bool(evaluate(expression, self.values))
        if not holds:
            raise ClaimError(f"{self.chapter}: the claim '{statement}' ({expression}) does not "
                             "hold for the numbers computed here")
        return holds

    def record(self) -> dict[str, Any]:
        return {**self.values, "claims": dict(self.claims)}

    def save(self) -> Path:
        """Write results/<chapter>.json from the facts and claims (results.save_json)."""
        from .records import check
        from .results import save_json

        check(self.chapter, self.record())  # what other chapters read is there, in its form
        return save_json(self.chapter, self.record())


def check_claims(results: Mapping[str, Any]) -> list[str]:
    """The claims of one results record that its own facts contradict (empty: all hold)."""
    claims = results.get("claims", {})
    facts = {k: v for k, v in results.items() if k != "claims"}
    return [statement for statement, claim in claims.items()
            if not bool(evaluate(claim["expression"], facts))]
