"""Typed chapter records: the committed results give every record, a missing or malformed field
is named, and docs/results.md lists the fields the records declare."""

import copy
import json

import pytest

import helpers
from mnist_report import facts, records


def committed(name):
    return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]


@pytest.mark.parametrize("chapter", sorted(records.RECORDS))
def test_every_committed_results_file_gives_its_record(chapter):
    record = records.of(chapter, committed(chapter))
    assert isinstance(record, records.RECORDS[chapter])


def test_fields_are_typed_and_read_by_name_not_position():
    cnn = records.of("04_cnn", committed("04_cnn"))
    assert isinstance(cnn.best_single.ci95, tuple) and len(cnn.best_single.ci95) == 2
    assert cnn.best_single.test_accuracy_mean == committed("04_cnn")["best_single"][
        "test_accuracy_mean"]
    raw = committed("04_cnn")["noise"]
    model = next(iter(raw["accuracy"]))
    assert cnn.noise.at(model, raw["levels"][-1]) == raw["accuracy"][model][-1]
    with pytest.raises(KeyError, match="not measured"):
        cnn.noise.at(model, 0.123)
    dense = records.of("02_dense_network", committed("02_dense_network"))
    assert dense.student_program.best_match["batch2048"].name.startswith("mnist.py")


def test_a_missing_field_is_named_with_its_chapter():
    data = copy.deepcopy(committed("04_cnn"))
    del data["best_single"]["ci95"]
    with pytest.raises(records.RecordError, match=r"04_cnn\.best_single\.ci95 is missing"):
        records.of("04_cnn", data)


@pytest.mark.parametrize("field, value, message", [
    ("climb_seeds", "five", "expected a number"),
    ("climb_seeds", 4.5, "expected a whole number"),
    ("aug_detectable", True, "expected a number"),
    ("permutation_paired", [], "expected a mapping"),
])
def test_a_field_of_the_wrong_kind_is_refused(field, value, message):
    data = dict(committed("04_cnn"), **{field: value})
    with pytest.raises(records.RecordError, match=message):
        records.of("04_cnn", data)


def test_an_interval_must_have_two_ends_and_curves_one_value_per_level():
    data = copy.deepcopy(committed("02_dense_network"))
    data["mlp"]["ci95"] = [0.98]
    with pytest.raises(records.RecordError, match=r"mlp\.ci95: expected 2 items"):
        records.of("02_dense_network", data)
    with pytest.raises(records.RecordError, match="3 accuracies for 2 levels"):
        records.build(records.Curves, {"levels": [0, 1], "accuracy": {"m": [1, 0.9, 0.8]}})


def test_facts_save_refuses_a_record_its_readers_cannot_read():
    chapter = facts.Facts("03_batch_size_sweep")
    chapter.add(convergence={"seeds": 5})  # no gap_128_minus_2048
    with pytest.raises(records.RecordError, match="gap_128_minus_2048 is missing"):
        chapter.save()


def test_docs_list_the_fields_the_records_declare():
    text = records.DOCS.read_text()
    assert records.render_docs(text) == text, "stale docs/results.md: run `python -m " \
        "mnist_report.records`"
    for cls in records.RECORDS.values():
        assert f"**`{cls.__name__}`**" in text
