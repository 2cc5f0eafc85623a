"""The run ledger (mnist_report/ledger.py): compact records of the cache, committed, served only
under the key the current code computes, never half-read."""

import json
import logging
import math

import numpy as np
import pytest

import helpers
from helpers import Net, Recipe
from mnist_report import cache, ledger, training


def build_tiny(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="softmax")])


def build_tiny_other(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


TINY = Net(build_tiny)
RECIPE = Recipe(epochs=2, batch_size=64, n_train=600, n_eval=500, snapshots=(1, 2))


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty local cache, an empty ledger and a recording folder, for one test."""
    previous = helpers.configure(cache=tmp_path / "cache")
    monkeypatch.setenv("MNIST_LEDGER_DIR", str(tmp_path / "ledger"))
    monkeypatch.setenv("MNIST_LEDGER_RECORD", str(tmp_path / "record"))
    monkeypatch.setenv("MNIST_CHAPTER", "09_test")
    monkeypatch.delenv("MNIST_LEDGER", raising=False)
    yield tmp_path
    helpers.configure(**previous.as_dict())


def build_ledger(tmp_path):
    summary = ledger.build(tmp_path / "record", replace=True)
    return tmp_path / "ledger" / "09_test.jsonl", summary


def forget_local_cache(tmp_path):
    helpers.configure(cache=tmp_path / "empty-cache")


def test_encoding_gives_back_exactly_what_went_in():
    value = {"a": (1, 2.5, None), 3: [float("nan"), float("inf"), -float("inf")],
             "s": np.float32(0.1), "i": np.int64(7), "p": np.random.default_rng(0).random(
                 (50, 10)).astype(np.float32), "u": np.arange(10, dtype=np.uint8),
             "e": np.zeros((0, 3)), "nested": {"__tricky": True, "x": [(1,), {"k": 2}]}}
    text = json.dumps(ledger.encode(value), allow_nan=False)  # strict JSON
    back = ledger.decode(json.loads(text))
    assert set(back) == set(value) and back["a"] == (1, 2.5, None)
    assert math.isnan(back[3][0]) and back[3][1:] == [math.inf, -math.inf]
    assert type(back["s"]) is np.float32 and back["s"] == value["s"]
    assert type(back["i"]) is np.int64 and back["i"] == 7
    for name in ("p", "u", "e"):
        assert back[name].dtype == value[name].dtype and back[name].shape == value[name].shape
        assert back[name].tobytes() == value[name].tobytes()
    assert back["nested"] == value["nested"]
    with pytest.raises(ledger.LedgerError, match="cannot store a object"):
        ledger.encode(object())


def test_a_run_round_trips_through_the_ledger_without_its_weights(places):
    first = helpers.train(TINY, RECIPE, seed=1)
    assert first.source == "trained" and first.cache_key
    proba = first.test_proba  # read: so the ledger keeps it
    path, summary = build_ledger(places)
    assert summary["files"]["09_test.jsonl"]["entries"] == 1
    line = json.loads(path.read_text())
    assert "weights" not in json.dumps(line) and set(line["extras"]) == {"test_proba"}

    forget_local_cache(places)
    again = helpers.train(TINY, RECIPE, seed=1)
    assert again.source == "ledger" and again.cached
    for field in ("val_loss", "val_accuracy", "test_loss", "test_accuracy", "train_seconds",
                  "images_seen", "history", "snapshots", "curve", "environment"):
        assert getattr(again, field) == getattr(first, field), field
    assert list(again.snapshots) == [1, 2]  # integer keys come back as integers
    assert again.test_proba.tobytes() == proba.tobytes()
    assert (again.test_predictions == proba.argmax(1)).all()


def test_a_ledger_run_retrains_once_for_its_weights_and_says_so(places, caplog):
    first = helpers.train(TINY, RECIPE, seed=1)
    weights = first.weights
    build_ledger(places)
    forget_local_cache(places)
    again = helpers.train(TINY, RECIPE, seed=1)
    assert again.__dict__["weights"] is None
    with caplog.at_level(logging.WARNING, logger="mnist_report"):
        restored = again.weights
    assert "Retraining" in caplog.text and "ledger does not keep" in caplog.text
    assert all((a == b).all() for a, b in zip(restored, weights, strict=True))
    assert "differs from its ledger record" not in caplog.text  # same machine, same numbers
    assert helpers.train(TINY, RECIPE, seed=1).source == "cache"  # kept locally from now on


def test_predictions_alone_are_kept_compactly(places):
    first = helpers.train(TINY, RECIPE, seed=1)
    predictions = first.test_predictions  # read the predictions, not the probabilities
    path, _ = build_ledger(places)
    assert set(json.loads(path.read_text())["extras"]) == {"test_predictions"}
    forget_local_cache(places)
    again = helpers.train(TINY, RECIPE, seed=1)
    assert (again.test_predictions == predictions).all()
    assert again.__dict__["test_proba"] is None  # served without retraining


def test_a_code_change_that_alters_the_key_misses_the_ledger(places, monkeypatch):
    helpers.train(TINY, RECIPE, seed=1)
    build_ledger(places)
    forget_local_cache(places)
    assert helpers.is_cached(TINY, RECIPE, 1)
    assert not helpers.is_cached(Net(build_tiny_other), RECIPE, 1)  # other builder code
    assert not helpers.is_cached(TINY, RECIPE, 2)
    monkeypatch.setattr(training, "TRAINING_VERSION", training.TRAINING_VERSION + 1)
    assert not helpers.is_cached(TINY, RECIPE, 1)  # other training code
    monkeypatch.setenv("MNIST_LEDGER", "only")
    with pytest.raises(ledger.LedgerMiss, match="MNIST_LEDGER=only"):
        helpers.train(TINY, RECIPE, seed=1)


def test_the_ledger_is_ignored_when_switched_off(places, monkeypatch):
    helpers.train(TINY, RECIPE, seed=1)
    build_ledger(places)
    forget_local_cache(places)
    monkeypatch.setenv("MNIST_LEDGER", "off")
    assert not helpers.is_cached(TINY, RECIPE, 1)
    monkeypatch.setenv("MNIST_LEDGER", "sometimes")
    with pytest.raises(ValueError, match="MNIST_LEDGER='sometimes'"):
        ledger.mode()


def test_an_entry_under_a_key_that_does_not_match_is_never_served(places, caplog):
    helpers.train(TINY, RECIPE, seed=1)
    path, _ = build_ledger(places)
    forget_local_cache(places)
    entry = json.loads(path.read_text())
    entry["key"] = training.run_key(TINY, RECIPE, 2)  # seed 1's record offered as seed 2's
    path.write_text(json.dumps(entry) + "\n")
    with caplog.at_level(logging.WARNING, logger="mnist_report"):
        assert not helpers.is_cached(TINY, RECIPE, 2)
    assert "09_test.jsonl, line 1" in caplog.text and "digest does not match" in caplog.text
    assert not helpers.is_cached(TINY, RECIPE, 1)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_ledger_file_is_skipped_with_a_warning_never_misread(places, caplog, damage):
    runs = [helpers.train(TINY, RECIPE, seed=s) for s in (1, 2)]
    path, _ = build_ledger(places)
    forget_local_cache(places)
    lines = path.read_text().splitlines()
    if damage == "truncate":  # a file cut short inside its last line
        path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    else:  # one digit of a score changed, the JSON still valid
        entry = json.loads(lines[1])
        entry["record"]["test_accuracy"] += 0.01
        path.write_text(lines[0] + "\n" + json.dumps(entry) + "\n")
    damaged_key = json.loads(lines[1])["key"]
    with caplog.at_level(logging.WARNING, logger="mnist_report"):
        assert ledger.lookup("train", damaged_key) is None
    assert "09_test.jsonl, line 2" in caplog.text
    served = [helpers.train(TINY, RECIPE, seed=r.seed) for r in runs]
    assert {r.source for r in served} == {"ledger", "trained"}  # the damaged one is recomputed
    assert [r.test_accuracy for r in served] == [r.test_accuracy for r in runs]


calls = []  # state, not code: outside the fingerprint


@helpers.cached
def first_layer_norm(result):
    calls.append(result.seed)
    return float(np.linalg.norm(result.weights[0]))


def test_analyses_of_a_run_are_cached_under_its_key_and_replay_without_weights(places,
                                                                               monkeypatch):
    calls.clear()
    run = helpers.train(TINY, RECIPE, seed=1)
    value = first_layer_norm(run)
    x, y = helpers.mnist_split(n_eval=500)["test"]
    accuracy = helpers.perturbed_accuracy(run, x, y, "noise", [0.0, 0.5], flat=True)
    _, summary = build_ledger(places)
    assert summary["weights_read"] == {}  # inside cached computations only
    forget_local_cache(places)
    monkeypatch.setenv("MNIST_LEDGER", "only")  # nothing may be computed, nothing retrained
    served = helpers.train(TINY, RECIPE, seed=1)
    assert first_layer_norm(served) == value and calls == [1]
    assert helpers.perturbed_accuracy(served, x, y, "noise", [0.0, 0.5], flat=True) == accuracy
    with pytest.raises(ledger.LedgerMiss, match="weights"):
        served.weights  # noqa: B018 (outside a cached analysis: it would retrain)


def test_weights_read_outside_a_cached_computation_are_reported(places):
    run = helpers.train(TINY, RECIPE, seed=1)
    run.model()
    _, summary = build_ledger(places)
    assert list(summary["weights_read"]) == ["09_test"]
    assert "read the weights of 1 runs" in ledger.build_text(summary)


def test_a_full_build_writes_exactly_what_was_read(places, monkeypatch):
    helpers.train(TINY, RECIPE, seed=1)
    build_ledger(places)
    (places / "ledger" / "08_gone.jsonl").write_text("")
    for old in (places / "record").glob("*"):
        old.unlink()
    monkeypatch.setenv("MNIST_LEDGER_RECORD", str(places / "record"))
    helpers.train(TINY, RECIPE, seed=2)  # this time the chapter reads seed 2 only
    path, summary = build_ledger(places)
    assert summary["files"]["08_gone.jsonl"] == "deleted"
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert keys == [training.run_key(TINY, RECIPE, 2)]


def test_the_committed_ledger_stays_small_and_readable():
    total = ledger.total_bytes()
    assert total <= ledger.SIZE_LIMIT_MB * 1e6, (
        f"results/ledger/ holds {total / 1e6:.1f} MB (limit {ledger.SIZE_LIMIT_MB} MB): keep "
        "per-image parts out of entries no chapter reads")
    for path in ledger.files("full") + ledger.files("smoke"):
        lines = path.read_text().splitlines()
        assert len(ledger.read_file(path)) == len(lines), f"{path.name} has unreadable lines"
        keys = [(e["ns"], e["key"]) for e in map(json.loads, lines)]
        assert keys == sorted(keys), f"{path.name} is not sorted by namespace and key"


def test_fetch_reports_where_an_entry_came_from(places):
    cache.store("cached", "k" * 64, {"x": 1})
    assert cache.fetch("cached", "k" * 64) == ({"x": 1}, "cache")
    build_ledger(places)
    forget_local_cache(places)
    assert cache.fetch("cached", "k" * 64) == ({"x": 1}, "ledger")
    assert cache.fetch("cached", "m" * 64) == (None, None)


def test_stats_sum_the_training_each_chapter_records(places):
    runs = [helpers.train(TINY, RECIPE, seed=s) for s in (1, 2)]
    build_ledger(places)
    (row,) = ledger.stats()
    assert row["file"] == "09_test.jsonl" and row["train"] == 2
    assert row["train_seconds"] == pytest.approx(sum(r.train_seconds for r in runs))
    assert row["images_seen"] == sum(r.images_seen for r in runs)
