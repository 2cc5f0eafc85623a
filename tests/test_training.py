"""train(): the typed recipe and result, budgets, the recorder and train_many, on tiny models."""

import json
import time

import numpy as np
import pytest

import helpers
from helpers import Net, Recipe
from mnist_report import training


def build_tiny(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="softmax")])


def build_tiny_other(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(units, activation="softmax")])


TINY = Net(build_tiny)
RECIPE = Recipe(epochs=2, batch_size=64, n_train=600)
STEPS = Recipe(batch_size=32, steps=48, n_train=512, optimizer="sgd", learning_rate=0.05)


@pytest.fixture
def fresh_cache(tmp_path):
    """An empty training cache for one test (set through helpers.configure, then restored)."""
    previous = helpers.configure(cache=tmp_path / "cache")
    yield tmp_path / "cache"
    helpers.configure(**previous.as_dict())


@pytest.fixture
def speed(fresh_cache):
    """Change a speed setting for one test; restored afterwards."""
    previous = helpers.settings()
    yield lambda **changes: helpers.configure(**changes)
    helpers.configure(**previous.as_dict())


def test_train_returns_a_typed_result_with_metrics_predictions_and_cost(fresh_cache):
    r = helpers.train(TINY, RECIPE, seed=1)
    assert isinstance(r, helpers.TrainResult) and r.net == TINY and r.recipe == RECIPE
    assert r.cached is False and r.epochs_run == 2 and len(r.history["loss"]) == 2
    assert r.images_seen == 2 * 600 and r.steps_run == 2 * 10
    assert r.test_proba.shape == (10000, 10)
    np.testing.assert_allclose(r.test_proba.sum(axis=1), 1.0, atol=1e-4)
    _, y_test = helpers.load_mnist()[1]
    assert r.test_accuracy == pytest.approx((r.test_proba.argmax(1) == y_test).mean(), abs=1e-4)
    assert r.test_accuracy > 0.5  # 600 images, 2 epochs: far above chance, far from good
    assert r.n_params == 7850 and r.train_seconds > 0
    assert r.images_per_second == pytest.approx(r.images_seen / r.train_seconds)
    assert r.environment["profile"] == "smoke" and "cpu_flags" in r.environment


def test_second_call_is_served_from_the_cache(fresh_cache):
    first = helpers.train(TINY, RECIPE, seed=1)
    second = helpers.train(TINY, RECIPE, seed=1)
    assert second.cached is True and helpers.is_cached(TINY, RECIPE, 1)
    assert second.test_accuracy == first.test_accuracy
    assert second.train_seconds == first.train_seconds


def test_cache_key_covers_builder_code_arguments_recipe_and_seed(fresh_cache):
    helpers.train(TINY, RECIPE, seed=1)
    assert not helpers.is_cached(Net(build_tiny_other), RECIPE, 1)
    assert not helpers.is_cached(Net(build_tiny, units=10), RECIPE, 1)  # explicit = another key
    assert not helpers.is_cached(TINY, RECIPE, 2)
    assert not helpers.is_cached(TINY, RECIPE.replace(batch_size=32), 1)
    assert not helpers.is_cached(TINY, RECIPE.replace(label_smoothing=0.1), 1)


def test_same_seed_gives_the_same_model_without_the_cache(fresh_cache):
    a = helpers.train(TINY, RECIPE, seed=1)
    b = helpers.train(TINY, RECIPE, seed=1, use_cache=False)
    assert b.cached is False
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_uncached_training_leaves_the_cache_alone(fresh_cache):
    helpers.train(TINY, RECIPE, seed=1, use_cache=False)
    assert not helpers.is_cached(TINY, RECIPE, 1)


def test_recipe_checks_its_budget_and_schedule():
    with pytest.raises(ValueError, match="exactly one budget"):
        Recipe(batch_size=32, steps=10, epochs=1)
    with pytest.raises(ValueError, match="exactly one budget"):
        Recipe(batch_size=32)
    with pytest.raises(ValueError, match="unknown schedule"):
        Recipe(batch_size=32, epochs=1, schedule="step")
    with pytest.raises(ValueError, match="within the budget"):
        Recipe(batch_size=32, epochs=1, snapshots=(8,))
    with pytest.raises(ValueError, match="within the budget"):
        Recipe(batch_size=32, steps=10, snapshots=(-1,))
    assert Recipe(batch_size=32, steps=10, snapshots=(0, 10)).snapshots == (0, 10)  # 0: untrained
    with pytest.raises(ValueError, match="raw_pixels"):
        Recipe(batch_size=32, epochs=1, raw_pixels=("labels",))
    with pytest.raises(ValueError, match="raw_pixels"):
        Recipe(batch_size=32, epochs=1, scale=False, raw_pixels=("test",))
    with pytest.raises(TypeError):
        Recipe(batch_size=32, epochs=1, hidden=(8,))  # a builder argument is not a recipe field


def test_recipe_normalises_what_means_the_same_and_refuses_empty_budgets():
    assert Recipe(batch_size=8, epochs=1, learning_rate=1).key() == Recipe(
        batch_size=8, epochs=1, learning_rate=1.0).key()
    assert Recipe(batch_size=8, epochs=1, optimizer_config={}) == Recipe(batch_size=8, epochs=1)
    for bad in ({"epochs": 0}, {"steps": 0}, {"epochs": 1, "batch_size": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            Recipe(**{"batch_size": 8, **bad})


def test_recipe_key_holds_only_what_differs_from_the_defaults():
    assert Recipe(batch_size=64, epochs=2).key() == {"batch_size": 64, "epochs": 2}
    explicit = Recipe(batch_size=64, epochs=2, learning_rate=1e-3, optimizer="adam", scale=True)
    assert explicit.key() == Recipe(batch_size=64, epochs=2).key()
    assert Recipe(batch_size=64, epochs=2, snapshots=[]).key() == {"batch_size": 64, "epochs": 2}


def test_a_recipe_read_back_from_json_is_the_same_recipe_and_cache_entry(fresh_cache):
    net = Net(helpers.conv_net, filters=(4,), convs=(1,), dropout=0.0)
    recipe = RECIPE.replace(flatten=False, optimizer_config={"beta_1": 0.8})
    first = helpers.train(net, recipe, seed=1)
    record = json.loads(json.dumps(helpers.headline(net, recipe, [1])))
    net2, recipe2, seeds = helpers.from_headline(record)
    assert (net2, recipe2, seeds) == (net, recipe, [1])
    again = helpers.train(net2, recipe2, seed=1)
    assert again.cached is True and again.test_accuracy == first.test_accuracy


def test_row_derives_the_table_columns_from_the_record(fresh_cache):
    r = helpers.train(Net(helpers.dense_net, hidden=(16,)), RECIPE, seed=1)
    row = r.row("tiny mlp")
    assert row["model"] == "tiny mlp" and row["hidden"] == "16" and row["seed"] == 1
    assert row["test_accuracy"] == r.test_accuracy and row["n_params"] == 784 * 16 + 16 + 170
    assert row["batch_size"] == 64 and row["images_seen"] == 1200 and row["epochs"] == 2
    assert not any(isinstance(v, list | dict | np.ndarray) for v in row.values())
    softmax = helpers.train(Net(helpers.dense_net, hidden=()), RECIPE, seed=1)
    assert softmax.row("softmax")["hidden"] == "none"


def test_early_stopping_restores_and_stops(fresh_cache):
    r = helpers.train(TINY, RECIPE.replace(epochs=30, patience=1, learning_rate=1.0,
                                           optimizer="sgd"), seed=1)
    assert r.epochs_run < 30 and r.images_seen == r.epochs_run * 600
    assert r.val_accuracy == pytest.approx(max(r.history["val_accuracy"]), abs=1e-6)


def test_cosine_schedule_decays_the_learning_rate_to_zero(fresh_cache):
    constant = helpers.train(TINY, RECIPE.replace(learning_rate=0.01), seed=1)
    cosine = helpers.train(TINY, RECIPE.replace(learning_rate=0.01, schedule="cosine"), seed=1)
    assert constant.final_learning_rate == pytest.approx(0.01)
    assert cosine.final_learning_rate == pytest.approx(0.0, abs=1e-6)


def test_one_cycle_warms_up_to_the_peak_then_decays_to_zero():
    schedule = training._schedule("onecycle", 0.01, total_steps=100)
    warm = int(100 * training.ONE_CYCLE_WARMUP)
    assert float(schedule(0)) == pytest.approx(0.01 * training.ONE_CYCLE_START)
    assert float(schedule(warm)) == pytest.approx(0.01)
    assert float(schedule(warm // 2)) < 0.01 and float(schedule(warm + 10)) < 0.01
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert training._schedule(None, 0.01, 100) == 0.01


def test_label_smoothing_changes_training_but_not_how_runs_are_scored(fresh_cache):
    plain = helpers.train(TINY, RECIPE, seed=1)
    smooth = helpers.train(TINY, RECIPE.replace(label_smoothing=0.1), seed=1)
    assert smooth.history["loss"] != plain.history["loss"]
    model = smooth.model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = helpers.mnist_split(flatten=True)["test"]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert smooth.test_loss == pytest.approx(loss, rel=1e-4)
    assert smooth.test_accuracy == pytest.approx(accuracy)


def test_model_and_saliency_use_the_trained_weights(fresh_cache):
    net, recipe = Net(helpers.conv_net, filters=(4,), dropout=0.0), RECIPE.replace(flatten=False)
    r = helpers.train(net, recipe, seed=1)
    model = r.model()
    x, _ = helpers.mnist_split()["test"]
    np.testing.assert_allclose(model.predict(x, verbose=0), r.test_proba, atol=1e-5)
    other = helpers.train(net, recipe, seed=2).model()
    pair = helpers.ensemble([model, other]).predict(x[:50], verbose=0)
    np.testing.assert_allclose(pair, (r.test_proba[:50] + other.predict(x[:50], verbose=0)) / 2,
                               atol=1e-5)
    sal = helpers.saliency(model, x[:3])
    assert sal.shape == (3, 28, 28, 1) and np.all(sal >= 0) and sal.max() > 0


def test_step_budget_scores_snapshots_exactly_at_the_requested_steps(fresh_cache):
    r = helpers.train(Net(helpers.dense_net, hidden=(16,)), STEPS.replace(snapshots=(16, 48)),
                      seed=1)
    assert r.steps_run == 48 and r.epochs_run == pytest.approx(3.0) and r.images_seen == 48 * 32
    assert r.steps_per_call == 16  # gcd of 32, 512 / 32 batches per pass, 48 and 16
    assert sorted(r.snapshots) == [16, 48] and r.diverged_at is None
    last = r.snapshots[48]
    assert last["val_accuracy"] == r.val_accuracy and last["test_loss"] == r.test_loss
    assert {"train_accuracy", "train_loss", "seconds"} <= set(last)
    steps = [point["step"] for point in r.curve]
    assert steps == sorted(steps) and steps[0] == 16 and steps[-1] == 48
    _, y_test = helpers.load_mnist()[1]
    assert r.test_accuracy == pytest.approx((r.test_proba.argmax(1) == y_test).mean())


def test_step_budget_refuses_what_it_cannot_do_exactly(fresh_cache):
    with pytest.raises(ValueError, match="whole batches"):
        helpers.train(TINY, STEPS.replace(steps=10, n_train=500), seed=1)
    with pytest.raises(ValueError, match="within the budget"):
        helpers.train(TINY, STEPS.replace(steps=16, snapshots=(32,)), seed=1)


def test_trace_records_each_step_without_changing_training(fresh_cache):
    net, recipe = Net(helpers.dense_net, hidden=(16,)), STEPS.replace(steps=None, epochs=1)
    plain = helpers.train(net, recipe, seed=1)
    traced = helpers.train(net, recipe.replace(trace_steps=5), seed=1)
    assert [t["step"] for t in traced.trace] == [0, 1, 2, 3, 4, 5]
    for point in traced.trace:
        assert 0.0 <= point["dead_fraction"] <= 1.0 and point["grad_norm"] > 0
        assert point["preact_rms"] > 0 and 0.1 <= point["top_probability"] <= 1.0
    for a, b in zip(plain.weights, traced.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_diverging_run_stops_and_is_scored_at_every_budget(fresh_cache):
    r = helpers.train(Net(helpers.dense_net, hidden=(256, 256)),
                      STEPS.replace(steps=64, snapshots=(32, 64), scale=False, learning_rate=1.0),
                      seed=1)
    assert r.diverged_at is not None and r.steps_run < 64
    assert not np.isfinite(r.snapshots[64]["train_loss"])
    assert r.test_accuracy < 0.2


def test_gradient_noise_scale_grows_as_training_converges(fresh_cache):
    x, y = helpers.mnist_split(flatten=True, n_train=4096)["train"]
    r = helpers.train(Net(helpers.dense_net, hidden=(32,)),
                      STEPS.replace(steps=256, n_train=4096, learning_rate=0.1), seed=1)
    model = r.net.make()
    start = helpers.gradient_noise_scale(model, x, y, n_small=64)
    model.set_weights(r.weights)
    end = helpers.gradient_noise_scale(model, x, y, n_small=64)
    assert start["trace_sigma"] > 0 and start["gradient_sq_norm"] > 0
    assert 0 < start["noise_scale"] < end["noise_scale"]  # the signal shrinks as the loss falls


def test_reported_loss_is_what_keras_evaluate_reports(fresh_cache):
    # A raw-pixel network is confidently wrong on many images: clipped probabilities would
    # understate its loss, Keras's logits-based cross-entropy does not.
    r = helpers.train(Net(helpers.dense_net, hidden=(64,)),
                      STEPS.replace(steps=None, epochs=1, scale=False), seed=1)
    model = r.model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(*helpers.mnist_split(scale=False, flatten=True)["test"],
                                    batch_size=1000, verbose=0)
    assert r.test_loss == pytest.approx(loss, rel=1e-5)
    assert r.test_accuracy == pytest.approx(accuracy, abs=1e-6)


def test_steps_per_execution_changes_speed_not_results(speed):
    # 600 images at batch 64: 10 steps per epoch, so calls of 4 steps end early at each epoch end
    runs = {}
    for chunk in (4, 1):
        speed(steps_per_execution=chunk)
        runs[chunk] = helpers.train(TINY, RECIPE, seed=1, use_cache=False)
    assert runs[4].steps_per_call == 4 and runs[1].steps_per_call == 1
    assert runs[4].steps_run == runs[1].steps_run == 20
    assert runs[4].history == runs[1].history
    for a, b in zip(runs[4].weights, runs[1].weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_steps_per_execution_does_not_move_a_step_budget_s_records(speed):
    net, recipe = Net(helpers.dense_net, hidden=(8,)), STEPS.replace(snapshots=(16, 48))
    runs = {}
    for chunk in (4, 32):
        speed(steps_per_execution=chunk)
        runs[chunk] = helpers.train(net, recipe, seed=1, use_cache=False)
    assert runs[4].steps_per_call == runs[32].steps_per_call == 16  # the training path's own

    def untimed(curve):
        return [{k: v for k, v in point.items() if k != "seconds"} for point in curve]

    assert untimed(runs[4].curve) == untimed(runs[32].curve)
    assert runs[4].history == runs[32].history


def test_tf_data_autotuning_changes_speed_not_results(speed):
    runs = {}
    for auto in (True, False):
        speed(tf_data_autotune=auto)
        runs[auto] = helpers.train(TINY, RECIPE, seed=1, use_cache=False)
    for a, b in zip(runs[True].weights, runs[False].weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[True].history == runs[False].history


def test_validation_inside_fit_is_not_training_time(fresh_cache, monkeypatch):
    calls = {"validation": 0}
    recorder_class = training._recorder_class

    def patched():
        class Slow(recorder_class()):
            def on_test_begin(self, logs=None):
                super().on_test_begin(logs)
                calls["validation"] += 1
                time.sleep(0.5)  # as if validation took half a second

        return Slow

    monkeypatch.setattr(training, "_recorder_class", patched)
    start = time.perf_counter()
    r = helpers.train(TINY, RECIPE, seed=1, use_cache=False)
    wall = time.perf_counter() - start
    assert calls["validation"] == 2  # one validation per epoch
    assert wall - r.train_seconds >= 2 * 0.5  # the "validation" is not counted as training


def test_perturbed_accuracy_scores_the_perturbed_test_set_and_is_cached(fresh_cache, monkeypatch):
    import keras

    r = helpers.train(TINY, RECIPE, seed=1)
    x, y = helpers.mnist_split()["test"]
    x, y = x[:500], y[:500]
    levels = [0.0, 0.5]
    accuracy = helpers.perturbed_accuracy(r, x, y, "noise", levels, flat=True)
    model = r.model()
    for level, a in zip(levels, accuracy, strict=True):
        pred = model.predict(helpers.add_noise(x, level).reshape(len(x), -1), verbose=0).argmax(1)
        assert a == pytest.approx(float((pred == y).mean()))
    assert accuracy[0] == pytest.approx(float((r.test_proba[:500].argmax(1) == y).mean()))
    assert accuracy[1] < accuracy[0]

    def refuse(*args, **kwargs):
        raise AssertionError("predicted again: the cache was not used")

    monkeypatch.setattr(keras.Model, "predict", refuse)
    assert helpers.perturbed_accuracy(r, x, y, "noise", levels, flat=True) == accuracy
    with pytest.raises(AssertionError, match="predicted again"):  # other levels: a new entry
        helpers.perturbed_accuracy(r, x, y, "noise", [0.3], flat=True)
    with pytest.raises(ValueError, match="perturbation must be one of"):
        helpers.perturbed_accuracy(r, x, y, "blur", levels, flat=True)


SWEEP_NET = Net(helpers.dense_net, hidden=(8,))
TINY_SWEEP = [(SWEEP_NET, Recipe(batch_size=32, steps=16, snapshots=(16,), optimizer="sgd",
                                 learning_rate=lr, n_train=512), seed)
              for seed, lr in [(1, 0.05), (2, 0.05), (1, 0.2)]]


def test_train_many_returns_runs_in_order_and_caches_them(fresh_cache):
    from mnist_report.training import run_counts

    before = run_counts()
    runs = helpers.train_many(TINY_SWEEP)
    assert [(r.seed, r.recipe.learning_rate) for r in runs] == [
        (seed, recipe.learning_rate) for _, recipe, seed in TINY_SWEEP]
    assert not any(r.cached for r in runs)
    assert all(helpers.is_cached(*run, threads=1) for run in TINY_SWEEP)
    # kept apart from train() in this process (more threads: sums may round differently)
    assert not any(helpers.is_cached(*run) for run in TINY_SWEEP)
    again = helpers.train_many(TINY_SWEEP)  # from the cache, no worker
    assert all(r.cached for r in again)
    after, n = run_counts(), len(TINY_SWEEP)  # what a chapter reports once, at its end
    assert (after["trained"] - before["trained"], after["cached"] - before["cached"]) == (n, n)
    assert f"{after['trained']:,} trained now" in helpers.runs_note()
    for a, b in zip(runs, again, strict=True):
        assert a.test_accuracy == b.test_accuracy


def test_train_many_gives_the_same_runs_whatever_the_number_of_workers(fresh_cache):
    weights = {}
    for n_jobs in (1, 2):
        helpers.configure(cache=fresh_cache / str(n_jobs))
        weights[n_jobs] = [r.weights for r in helpers.train_many(TINY_SWEEP, n_jobs=n_jobs)]
    for a, b in zip(weights[1], weights[2], strict=True):  # one TensorFlow thread per worker
        for wa, wb in zip(a, b, strict=True):
            np.testing.assert_array_equal(wa, wb)


def test_input_pipeline_gives_each_image_once_per_pass():
    x = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(10)
    helpers.set_seed(0)
    data = training._pipeline(x, y, batch_size=4, shuffle=True)
    assert data.cardinality().numpy() == 3  # Keras sees the epoch's length
    batches = [b[1].numpy() for b in data]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))
    assert np.concatenate(batches).tolist() != list(range(10))  # shuffled
    stream = training._pipeline(x, y, batch_size=5, shuffle=True, repeat=True)
    ys = [b[1].numpy() for b in stream.take(4)]  # whole batches, one pass after another
    assert sorted(np.concatenate(ys[:2])) == sorted(np.concatenate(ys[2:])) == list(range(10))
    assert [b[1].numpy().tolist() for b in training._pipeline(x, y, 4)] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # no shuffle: in order (validation)


def test_input_pipeline_trains_exactly_as_fit_on_arrays():
    x, y = helpers.mnist_split(flatten=True, n_train=600)["train"]
    weights = []
    for arrays in (True, False):
        helpers.set_seed(1)  # before the pipeline: its shuffle takes the seed
        data, kwargs = (((x, y), {"batch_size": 64}) if arrays else
                        ((training._pipeline(x, y, 64, shuffle=True),), {"shuffle": False}))
        model = build_tiny()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(*data, epochs=2, verbose=0, **kwargs)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_epoch_snapshots_score_the_run_as_an_e_epoch_run_would(fresh_cache):
    net = Net(helpers.dense_net, hidden=(16,))
    recipe = Recipe(batch_size=64, epochs=3, n_train=640, snapshots=(1, 3))
    long = helpers.train(net, recipe, seed=1)
    short = helpers.train(net, recipe.replace(epochs=1, snapshots=()), seed=1)
    assert sorted(long.snapshots) == [1, 3]
    assert long.snapshots[1]["test_accuracy"] == short.test_accuracy  # constant learning rate
    assert long.snapshots[1]["test_loss"] == short.test_loss
    assert long.snapshots[3]["val_accuracy"] == long.val_accuracy
    assert {"train_loss", "train_accuracy", "seconds", "epoch"} <= set(long.snapshots[3])


def test_all_train_adds_the_validation_images_to_the_training_set():
    split = helpers.mnist_split(flatten=True, val_in_train=True)
    held_out = helpers.mnist_split(flatten=True)
    assert len(split["train"][1]) == 60_000 and len(held_out["train"][1]) == 55_000
    np.testing.assert_array_equal(split["val"][0], held_out["val"][0])
    assert Recipe(batch_size=8, epochs=1, all_train=True).key()["all_train"] is True


def test_collapse_signature_tells_a_dead_network_from_a_live_one():
    helpers.set_seed(1)
    model = helpers.dense_net(hidden=(8,))
    x, y = helpers.mnist_split(flatten=True, n_eval=500)["test"]
    live = helpers.collapse_signature(model, x, y)
    w, b, w2, b2 = model.get_weights()
    model.set_weights([w * 0, b * 0 - 1, w2, b2])  # every ReLU unit is off for every image
    dead = helpers.collapse_signature(model, x, y)
    assert live["alive_layer1"] == 1.0 and dead["alive_layer1"] == 0.0
    assert dead["mode_share"] == 1.0 and dead["classes_predicted"] == 1
    assert dead["ceiling_constant"] == np.bincount(y).max() / len(y)
    assert dead["accuracy"] <= dead["ceiling_constant"] and live["kl_from_prior"] > 0
