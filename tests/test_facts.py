"""Facts and claims (mnist_report/facts.py): prose filled from computed numbers, claims checked
where they are made, and every committed claim re-checked against the committed results."""

import json

import pytest

import helpers
from mnist_report import facts as facts_module
from mnist_report.facts import ClaimError, Facts, check_claims, evaluate


def test_prose_uses_the_house_formats_and_named_thresholds():
    f = Facts("09_test")
    f.add(acc=0.98523, gap=0.006, n=55000, p=0.0004, ratio=1.23456)
    text = f.text("{acc:pct} ({acc:pct1}), {gap:pts} points, {n:int} images, p {p:p}, "
                  "x{ratio:num}, alpha {ALPHA}")
    assert text == ("98.52 % (98.5 %), +0.60 points, 55,000 images, p < 0.001, x1.235, "
                    "alpha 0.05")
    assert f.prose("{acc:pct}").data == "98.52 %"


def test_sequences_format_item_by_item_and_as_spans():
    f = Facts("09_test")
    f.add(p_values=[0.3125, 1.0], shares=[0.0, 0.35, 0.1], same=[1.0, 1.0], detectable=[0.32, 0.42])
    assert f.text("{p_values:list:.2g}; {shares:semilist:pct0}") == "0.31, 1; 0 %; 35 %; 10 %"
    assert f.text("{shares:span:pct0}, {same:span:pct0}, {detectable:span:points0} points") == (
        "0 %–35 %, 100 %, 32–42 points")
    assert helpers.fmt(0.98523, "pct") == "98.52 %" and helpers.fmt(0.01, "g") == "0.01"
    assert helpers.fmt([1, 2], "list") == "1, 2" and helpers.fmt(0.0009, "points2") == "0.09"


def test_a_false_claim_fails_where_it_is_made():
    f = Facts("09_test")
    f.add(mlp=0.985, softmax=0.928, p=0.2)
    assert f.claim("the MLP beats softmax regression", "mlp > softmax")
    with pytest.raises(ClaimError, match="significant.*p < ALPHA"):
        f.claim("the difference is significant", "p < ALPHA")


def test_full_only_claims_are_recorded_but_not_checked_in_smoke(configured):
    configured(profile="smoke")
    f = Facts("09_test")
    f.add(acc=0.3)
    assert f.claim("a real run reaches 99 %", "acc > 0.99", full_only=True)
    assert f.record()["claims"]["a real run reaches 99 %"] == {"expression": "acc > 0.99",
                                                               "full_only": True}
    with pytest.raises(ValueError, match="GeneratorExp"):  # its form is checked in smoke too
        f.claim("rising", "all(a < b for a, b in zip(xs, xs[1:]))", full_only=True)
    with pytest.raises(KeyError, match="not facts"):
        f.claim("a real run reaches 99 %", "accuracy > 0.99", full_only=True)
    configured(profile="full")
    with pytest.raises(ClaimError):
        f.claim("a real run reaches 99 %", "acc > 0.99", full_only=True)


def test_claims_are_expressions_over_facts_and_nothing_else():
    assert evaluate("min(xs) > 0 and xs[1] == 2", {"xs": [1, 2]})
    assert evaluate("abs(a - b) < SMALL_EFFECT", {"a": 0.9901, "b": 0.99})
    for bad in ("__import__('os')", "a.real", "open('f')"):
        with pytest.raises(ValueError):
            evaluate(bad, {"a": 1})
    with pytest.raises(KeyError, match="not facts"):
        evaluate("missing > 0", {})


def test_a_chapter_record_rechecks_its_claims(configured, tmp_path):
    configured(results=tmp_path)
    f = Facts("09_test")
    f.add(a=2, b=1)
    f.claim("a exceeds b", "a > b")
    path = f.save()
    saved = json.loads(path.read_text())["results"]
    assert check_claims(saved) == []
    saved["a"] = 0  # a committed number that now contradicts its sentence
    assert check_claims(saved) == ["a exceeds b"]
    f.add(a=3)  # rerun-safe: the fact is replaced, not accumulated
    assert f["a"] == 3 and len(f.claims) == 1


def test_every_committed_claim_holds_for_the_committed_results():
    checked = 0
    for path in sorted(helpers.COMMITTED_RESULTS.glob("*.json")):
        results = json.loads(path.read_text()).get("results", {})
        if isinstance(results, dict) and "claims" in results:
            assert check_claims(results) == [], f"{path.name}: claims the results contradict"
            checked += len(results["claims"])
    assert checked >= 5  # chapter 01 states five; more as chapters move to facts
    assert facts_module.FORMATS["pct"](0.5) == "50.00 %"


def test_signed_formats_use_a_true_minus_sign():
    f = Facts("09_test")
    f.add(drop=-0.0021, gain=0.006, change=-0.0123)
    assert f.text("{drop:pts}, {gain:pts}, {change:spct}, {change:spct0}") == (
        "\u22120.21, +0.60, \u22121.23 %, \u22121 %")
    assert "-" not in f.text("{drop:pts}")
    assert helpers.signed(-0.001) == "+0.00" == helpers.signed(0.0)
