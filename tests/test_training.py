"""The cached training helper, on a tiny model and a few hundred images."""

import numpy as np
import pytest

import helpers


def build_tiny(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(units, activation="softmax")])


def build_tiny_other(units=10):
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(units, activation="softmax")])


SETTINGS = {"seed": 1, "epochs": 2, "batch_size": 64, "n_train": 600, "verbose": False}


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(helpers, "CACHE", tmp_path)
    helpers.memory.cache_clear()
    helpers._train_cached.cache_clear()
    yield tmp_path
    helpers.memory.cache_clear()
    helpers._train_cached.cache_clear()


def test_split_is_fixed_disjoint_and_scaled():
    a = helpers.mnist_split(flatten=True, n_train=1000)
    b = helpers.mnist_split(flatten=True)
    assert a["train"][0].shape == (1000, 784) and b["train"][0].shape == (55000, 784)
    assert a["val"][0].shape == (helpers.VAL_SIZE, 784) and a["test"][0].shape == (10000, 784)
    np.testing.assert_array_equal(a["val"][1], b["val"][1])
    np.testing.assert_array_equal(a["train"][0], b["train"][0][:1000])
    assert 0.0 <= a["train"][0].min() and a["train"][0].max() == 1.0
    assert helpers.mnist_split(scale=False, n_train=10)["train"][0].shape == (10, 28, 28, 1)
    # No validation image is also a training image (compare raw bytes of each row).
    train_rows = {row.tobytes() for row in b["train"][0][:20000]}
    assert not any(row.tobytes() in train_rows for row in b["val"][0][:500])


def test_train_returns_metrics_predictions_and_timing(fresh_cache):
    r = helpers.train(build_tiny, **SETTINGS)
    assert r["cached"] is False and r["epochs_run"] == 2 and len(r["history"]["loss"]) == 2
    assert r["test_proba"].shape == (10000, 10)
    np.testing.assert_allclose(r["test_proba"].sum(axis=1), 1.0, atol=1e-4)
    _, y_test = helpers.load_mnist()[1]
    assert r["test_accuracy"] == pytest.approx((r["test_proba"].argmax(1) == y_test).mean(),
                                               abs=1e-4)
    assert r["test_accuracy"] > 0.5  # 600 images, 2 epochs: far above chance, far from good
    assert r["n_params"] == 7850 and r["train_seconds"] > 0
    assert r["environment"]["profile"] == "smoke"


def test_second_call_is_served_from_the_cache(fresh_cache):
    first = helpers.train(build_tiny, **SETTINGS)
    second = helpers.train(build_tiny, **SETTINGS)
    assert second["cached"] is True
    assert second["test_accuracy"] == first["test_accuracy"]
    assert second["train_seconds"] == first["train_seconds"]


def test_cache_key_covers_model_code_arguments_and_settings(fresh_cache):
    helpers.train(build_tiny, **SETTINGS)
    assert helpers.train(build_tiny_other, **SETTINGS)["cached"] is False
    assert helpers.train(build_tiny, **{**SETTINGS, "seed": 2})["cached"] is False
    assert helpers.train(build_tiny, **{**SETTINGS, "batch_size": 32})["cached"] is False


def test_same_seed_gives_the_same_model_without_the_cache(fresh_cache):
    a = helpers.train(build_tiny, **SETTINGS)
    helpers.memory().clear(warn=False)
    b = helpers.train(build_tiny, **SETTINGS)
    assert b["cached"] is False
    for wa, wb in zip(a["weights"], b["weights"], strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_early_stopping_restores_and_stops(fresh_cache):
    r = helpers.train(build_tiny, **{**SETTINGS, "epochs": 30, "patience": 1,
                                     "learning_rate": 1.0, "optimizer": "sgd"})
    assert r["epochs_run"] < 30
    assert r["val_accuracy"] == pytest.approx(max(r["history"]["val_accuracy"]), abs=1e-6)


def test_cosine_schedule_decays_the_learning_rate_to_zero(fresh_cache):
    constant = helpers.train(build_tiny, learning_rate=0.01, **SETTINGS)
    cosine = helpers.train(build_tiny, learning_rate=0.01, schedule="cosine", **SETTINGS)
    assert constant["final_learning_rate"] == pytest.approx(0.01)
    assert cosine["final_learning_rate"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown schedule"):
        helpers.train(build_tiny, schedule="step", **SETTINGS)


def test_one_cycle_warms_up_to_the_peak_then_decays_to_zero():
    schedule = helpers._schedule("onecycle", 0.01, total_steps=100)
    warm = int(100 * helpers.ONE_CYCLE_WARMUP)
    assert float(schedule(0)) == pytest.approx(0.01 * helpers.ONE_CYCLE_START)
    assert float(schedule(warm)) == pytest.approx(0.01)
    assert float(schedule(warm // 2)) < 0.01 and float(schedule(warm + 10)) < 0.01
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert helpers._schedule(None, 0.01, 100) == 0.01


def test_label_smoothing_changes_training_but_not_how_runs_are_scored(fresh_cache):
    plain = helpers.train(build_tiny, **SETTINGS)
    smooth = helpers.train(build_tiny, label_smoothing=0.1, **SETTINGS)
    assert smooth["history"]["loss"] != plain["history"]["loss"]
    model = build_tiny()
    model.set_weights(smooth["weights"])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = helpers.mnist_split(flatten=True)["test"]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert smooth["test_loss"] == pytest.approx(loss, rel=1e-4)
    assert smooth["test_accuracy"] == pytest.approx(accuracy)


def test_permuted_pixels_keep_the_content_and_lose_the_layout():
    plain = helpers.mnist_split(n_train=100)
    permuted = helpers.mnist_split(n_train=100, permute=3)
    order = helpers.pixel_permutation(3)
    assert sorted(order) == list(range(784)) and (order != np.arange(784)).mean() > 0.99
    for part in ("train", "val", "test"):
        x, y = plain[part]
        xp, yp = permuted[part]
        np.testing.assert_array_equal(y, yp)
        np.testing.assert_array_equal(xp.reshape(len(xp), -1), x.reshape(len(x), -1)[:, order])
    np.testing.assert_array_equal(helpers.pixel_permutation(3), order)


@pytest.mark.parametrize("kwargs, params", [
    ({}, 34_826),  # the Keras example: 320 + 18,496 + 16,010
    ({"batch_norm": True}, 288 + 128 + 18_432 + 256 + 16_010),
    ({"filters": (32, 64, 128), "dense": 64}, 320 + 18_496 + 73_856 + 128 * 64 + 64 + 650),
    ({"convs": 2, "filters": (16, 32)}, 160 + 2_320 + 4_640 + 9_248 + 512 * 10 + 10),
])
def test_conv_net_has_the_layers_it_names(kwargs, params):
    model = helpers.conv_net(**kwargs)
    assert model.count_params() == params
    out = model(np.zeros((3, 28, 28, 1), np.float32)).numpy()
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_conv_net_augments_only_in_training():
    import keras

    keras.utils.set_random_seed(0)
    model = helpers.conv_net(augment=(0.2, 20, 0.1), dropout=0.0)
    x = helpers.mnist_split(n_train=100)["test"][0][:8]
    inference = model(x, training=False).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), inference, atol=1e-6)
    assert not np.allclose(model(x, training=True).numpy(), inference, atol=1e-4)
    names = [type(layer).__name__ for layer in model.layers[:3]]
    assert names == ["RandomTranslation", "RandomRotation", "RandomZoom"]


def test_n_eval_shortens_validation_and_test_only():
    data = helpers.mnist_split(n_train=100, n_eval=50)
    full = helpers.mnist_split(n_train=100)
    assert [len(data[p][1]) for p in ("train", "val", "test")] == [100, 50, 50]
    np.testing.assert_array_equal(data["test"][0], full["test"][0][:50])
    np.testing.assert_array_equal(data["val"][1], full["val"][1][:50])


def test_shift_images_moves_each_digit_by_whole_pixels_with_a_blank_border():
    x = np.random.default_rng(0).random((40, 28, 28, 1)).astype(np.float32) + 1
    np.testing.assert_array_equal(helpers.shift_images(x, 0), x)
    moved = helpers.shift_images(x, 3, seed=5)
    assert moved.shape == x.shape and np.all((moved == 0).sum((1, 2, 3)) == 3 * 28)
    direction = np.random.default_rng(5).integers(4, size=40)
    up, down, left, right = (np.flatnonzero(direction == d)[0] for d in range(4))
    np.testing.assert_array_equal(moved[up, :25], x[up, 3:])
    np.testing.assert_array_equal(moved[down, 3:], x[down, :25])
    np.testing.assert_array_equal(moved[left, :, :25], x[left, :, 3:])
    np.testing.assert_array_equal(moved[right, :, 3:], x[right, :, :25])


def test_rebuild_and_saliency_use_the_trained_model(fresh_cache):
    r = helpers.train(helpers.conv_net, filters=(4,), dropout=0.0, flatten=False, **SETTINGS)
    model = helpers.rebuild(helpers.conv_net, r)
    x, _ = helpers.mnist_split()["test"]
    np.testing.assert_allclose(model.predict(x, verbose=0), r["test_proba"], atol=1e-5)
    other = helpers.rebuild(helpers.conv_net, helpers.train(
        helpers.conv_net, filters=(4,), dropout=0.0, flatten=False, **{**SETTINGS, "seed": 2}))
    pair = helpers.ensemble([model, other]).predict(x[:50], verbose=0)
    np.testing.assert_allclose(pair, (r["test_proba"][:50] + other.predict(x[:50], verbose=0)) / 2,
                               atol=1e-5)
    sal = helpers.saliency(model, x[:3])
    assert sal.shape == (3, 28, 28, 1) and np.all(sal >= 0) and sal.max() > 0


@pytest.mark.parametrize("hidden, dropout, params", [
    ((), 0.0, 7850),                                   # softmax regression: 784*10 + 10
    ((32,), 0.0, 784 * 32 + 32 + 32 * 10 + 10),
    ((512, 512), 0.3, 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
])
def test_dense_net_has_the_layers_it_names(hidden, dropout, params):
    import keras

    model = helpers.dense_net(hidden=hidden, dropout=dropout)
    assert model.count_params() == params
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [*hidden, 10]
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == (
        len(hidden) if dropout else 0)
    out = model(np.zeros((3, 784), np.float32)).numpy()
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_run_row_flattens_a_training_result(fresh_cache):
    r = helpers.train(helpers.dense_net, hidden=(16,), **SETTINGS)
    row = helpers.run_row(r, "tiny mlp")
    assert row["model"] == "tiny mlp" and row["hidden"] == "16" and row["seed"] == 1
    assert row["test_accuracy"] == r["test_accuracy"] and row["n_params"] == 784 * 16 + 16 + 170
    assert helpers.run_row(helpers.train(helpers.dense_net, hidden=(), **SETTINGS),
                           "softmax")["hidden"] == "none"


def test_builder_source_refuses_a_file_edited_after_import(tmp_path, monkeypatch):
    import importlib

    module = tmp_path / "edited_builders.py"
    module.write_text("def build_a(units=10):\n    return units\n\n\n"
                      "def build_b():\n    return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("edited_builders")
    assert helpers.builder_source(mod.build_b).startswith("def build_b")
    # An edit above build_b shifts it: the running function's line numbers now point elsewhere.
    module.write_text("# new line\n# another\n" + module.read_text())
    import linecache

    linecache.checkcache(str(module))
    with pytest.raises(helpers.StaleSourceError, match="Restart the kernel"):
        helpers.builder_source(mod.build_b)
    assert helpers.builder_source(helpers.dense_net).startswith("def dense_net")


STEPS = {"seed": 1, "batch_size": 32, "n_train": 512, "verbose": False, "optimizer": "sgd",
         "learning_rate": 0.05}


def test_step_budget_scores_snapshots_exactly_at_the_requested_steps(fresh_cache):
    r = helpers.train(helpers.dense_net, hidden=(16,), steps=48, snapshots=(16, 48), **STEPS)
    assert r["steps_run"] == 48 and r["epochs_run"] == pytest.approx(3.0)
    assert r["steps_per_call"] == 16  # gcd of 32, 512 / 32 batches per pass, 48 and 16
    assert sorted(r["snapshots"]) == [16, 48] and r["diverged_at"] is None
    last = r["snapshots"][48]
    assert last["val_accuracy"] == r["val_accuracy"] and last["test_loss"] == r["test_loss"]
    assert {"train_accuracy", "train_loss", "seconds"} <= set(last)
    steps = [point["step"] for point in r["curve"]]
    assert steps == sorted(steps) and steps[0] == 16 and steps[-1] == 48
    _, y_test = helpers.load_mnist()[1]
    assert r["test_accuracy"] == pytest.approx((r["test_proba"].argmax(1) == y_test).mean())


def test_step_budget_refuses_what_it_cannot_do_exactly(fresh_cache):
    with pytest.raises(ValueError, match="exactly one budget"):
        helpers.train(build_tiny, steps=10, epochs=1, **STEPS)
    with pytest.raises(ValueError, match="whole batches"):
        helpers.train(build_tiny, steps=10, **{**STEPS, "n_train": 500})
    with pytest.raises(ValueError, match="outside the budget"):
        helpers.train(build_tiny, steps=16, snapshots=(32,), **STEPS)
    with pytest.raises(ValueError, match="need a step budget"):
        helpers.train(build_tiny, epochs=1, snapshots=(8,), **STEPS)


def test_trace_records_each_step_without_changing_training(fresh_cache):
    plain = helpers.train(helpers.dense_net, hidden=(16,), epochs=1, **STEPS)
    traced = helpers.train(helpers.dense_net, hidden=(16,), epochs=1, trace_steps=5, **STEPS)
    assert [t["step"] for t in traced["trace"]] == [0, 1, 2, 3, 4, 5]
    for point in traced["trace"]:
        assert 0.0 <= point["dead_fraction"] <= 1.0 and point["grad_norm"] > 0
        assert point["preact_rms"] > 0 and 0.1 <= point["top_probability"] <= 1.0
    for a, b in zip(plain["weights"], traced["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_diverging_run_stops_and_is_scored_at_every_budget(fresh_cache):
    r = helpers.train(helpers.dense_net, hidden=(256, 256), steps=64, snapshots=(32, 64),
                      scale=False, **{**STEPS, "learning_rate": 1.0})
    assert r["diverged_at"] is not None and r["steps_run"] < 64
    assert not np.isfinite(r["snapshots"][64]["train_loss"])
    assert r["test_accuracy"] < 0.2


def test_gradient_noise_scale_grows_as_training_converges(fresh_cache):
    split = helpers.mnist_split(flatten=True, n_train=4096)
    x, y = split["train"]
    r = helpers.train(helpers.dense_net, hidden=(32,), steps=256, **{**STEPS, "n_train": 4096,
                                                                     "learning_rate": 0.1})
    model = helpers.dense_net(hidden=(32,))
    start = helpers.gradient_noise_scale(model, x, y, n_small=64)
    model.set_weights(r["weights"])
    end = helpers.gradient_noise_scale(model, x, y, n_small=64)
    assert start["trace_sigma"] > 0 and start["gradient_sq_norm"] > 0
    assert 0 < start["noise_scale"] < end["noise_scale"]  # the signal shrinks as the loss falls


def test_reported_loss_is_what_keras_evaluate_reports(fresh_cache):
    # A raw-pixel network is confidently wrong on many images: clipped probabilities would
    # understate its loss, Keras's logits-based cross-entropy does not.
    r = helpers.train(helpers.dense_net, hidden=(64,), epochs=1, scale=False, **STEPS)
    model = helpers.dense_net(hidden=(64,))
    model.set_weights(r["weights"])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(*helpers.mnist_split(scale=False, flatten=True)["test"],
                                    batch_size=1000, verbose=0)
    assert r["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert r["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_a_configuration_read_back_from_json_hits_the_same_cache_entry(fresh_cache):
    first = helpers.train(helpers.conv_net, filters=(4,), convs=(1,), dropout=0.0, flatten=False,
                          **SETTINGS)
    again = helpers.train(helpers.conv_net, filters=[4], convs=[1], dropout=0.0, flatten=False,
                          **SETTINGS)
    assert again["cached"] is True and again["test_accuracy"] == first["test_accuracy"]


def test_rotate_images_turns_each_digit_about_its_centre():
    x = np.zeros((6, 28, 28, 1), np.float32)
    x[:, 4:14, 13:15] = 1.0  # a vertical bar above the centre
    np.testing.assert_allclose(helpers.rotate_images(x, 0), x)
    turned = helpers.rotate_images(x, 90, seed=3)
    signs = np.random.default_rng(3).choice([-1, 1], size=6)
    for image, sign in zip(turned[..., 0], signs, strict=True):
        rows, cols = np.nonzero(image > 0.5)
        assert np.ptp(rows) <= 2 and np.ptp(cols) >= 8  # the bar now lies horizontally ...
        # ... on the side the drawn direction says (+: anticlockwise as shown, the top goes left)
        assert (cols.mean() < 14) == (sign > 0)
    assert turned.shape == x.shape and turned.sum() == pytest.approx(x.sum(), rel=0.05)


def test_add_noise_is_seeded_and_stays_in_the_pixel_range():
    x = np.full((50, 28, 28, 1), 0.5, np.float32)
    np.testing.assert_array_equal(helpers.add_noise(x, 0.0), x)
    noisy = helpers.add_noise(x, 0.1, seed=1)
    np.testing.assert_array_equal(noisy, helpers.add_noise(x, 0.1, seed=1))
    assert noisy.std() == pytest.approx(0.1, rel=0.05) and noisy.dtype == np.float32
    assert helpers.add_noise(x, 5.0).min() == 0.0 and helpers.add_noise(x, 5.0).max() == 1.0


def test_count_macs_of_the_report_models():
    assert helpers.count_macs(helpers.dense_net((256, 256))) == 784 * 256 + 256 * 256 + 256 * 10
    assert helpers.count_macs(helpers.dense_net(())) == 7840
    # Keras example: conv 26x26x(3x3x1)x32, conv 11x11x(3x3x32)x64, dense 1600x10.
    expected = 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 10
    assert helpers.count_macs(helpers.conv_net()) == expected
    bn = helpers.count_macs(helpers.conv_net(batch_norm=True, convs=(1, 2), dense=128))
    assert bn == expected - 1600 * 10 + 9 * 9 * 9 * 64 * 64 + 1024 * 128 + 128 * 10
    pair = helpers.ensemble([helpers.conv_net(), helpers.conv_net()])
    assert helpers.count_macs(pair) == 2 * expected  # an ensemble's members count in full


def test_inference_speed_reports_medians_with_their_spread():
    x = np.zeros((200, 784), np.float32)
    speed = helpers.inference_speed(helpers.dense_net((32,)), x, batch=100, repeats=5,
                                    batch_repeats=3)
    low, high = speed["latency_ms_iqr"]
    assert 0 < low <= speed["latency_ms"] <= high
    low, high = speed["throughput_iqr"]
    assert 0 < low <= speed["throughput"] <= high and speed["batch"] == 100


def test_steps_per_execution_changes_speed_not_results(fresh_cache, monkeypatch):
    # 600 images at batch 64: 10 steps per epoch, so calls of 4 steps end early at each epoch end
    monkeypatch.setattr(helpers, "STEPS_PER_EXECUTION", 4)
    chunked = helpers.train(build_tiny, cache=False, **SETTINGS)
    monkeypatch.setattr(helpers, "STEPS_PER_EXECUTION", 1)
    single = helpers.train(build_tiny, cache=False, **SETTINGS)
    assert chunked["steps_per_call"] == 4 and single["steps_per_call"] == 1
    assert chunked["steps_run"] == single["steps_run"] == 20
    assert chunked["history"] == single["history"]
    for a, b in zip(chunked["weights"], single["weights"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_uncached_training_leaves_the_cache_alone(fresh_cache):
    r = helpers.train(build_tiny, cache=False, **SETTINGS)
    assert r["cached"] is False
    assert helpers.train(build_tiny, **SETTINGS)["cached"] is False  # nothing was stored


def test_validation_inside_fit_is_not_training_time(fresh_cache, monkeypatch):
    import time

    slow_validation = {"calls": 0}
    recorder_class = helpers._recorder_class

    def patched():
        cls = recorder_class()

        class Slow(cls):
            def on_test_begin(self, logs=None):
                super().on_test_begin(logs)
                slow_validation["calls"] += 1
                time.sleep(1.0)  # as if validation took a second

        return Slow

    monkeypatch.setattr(helpers, "_recorder_class", patched)
    r = helpers.train(build_tiny, cache=False, **SETTINGS)
    assert slow_validation["calls"] == 2  # one validation per epoch
    assert r["train_seconds"] < 1.5  # the two seconds of "validation" are not counted


def test_builder_source_accepts_functions_that_call_modules_imported_at_the_top():
    # np.clip(...) in a module compiles differently from the same source compiled alone.
    for func in (helpers.shift_images, helpers.rotate_images, helpers.add_noise,
                 helpers.mnist_split, helpers.conv_net):
        assert helpers.builder_source(func).startswith(f"def {func.__name__}(")


def test_perturbed_accuracy_scores_the_perturbed_test_set_and_is_cached(fresh_cache, monkeypatch):
    import keras

    r = helpers.train(build_tiny, **SETTINGS)
    x, y = helpers.mnist_split()["test"]
    x, y = x[:500], y[:500]
    levels = [0.0, 0.5]
    accuracy = helpers.perturbed_accuracy(build_tiny, r, x, y, "noise", levels, flat=True)
    model = helpers.rebuild(build_tiny, r)
    for level, a in zip(levels, accuracy, strict=True):
        pred = model.predict(helpers.add_noise(x, level).reshape(len(x), -1), verbose=0).argmax(1)
        assert a == pytest.approx(float((pred == y).mean()))
    assert accuracy[0] == pytest.approx(float((r["test_proba"][:500].argmax(1) == y).mean()))
    assert accuracy[1] < accuracy[0]

    def refuse(*args, **kwargs):
        raise AssertionError("predicted again: the cache was not used")

    monkeypatch.setattr(keras.Model, "predict", refuse)
    assert helpers.perturbed_accuracy(build_tiny, r, x, y, "noise", levels, flat=True) == accuracy
    with pytest.raises(AssertionError, match="predicted again"):  # other levels: a new entry
        helpers.perturbed_accuracy(build_tiny, r, x, y, "noise", [0.3], flat=True)
    with pytest.raises(ValueError, match="perturbation must be one of"):
        helpers.perturbed_accuracy(build_tiny, r, x, y, "blur", levels, flat=True)


TINY_SWEEP = [{"hidden": (8,), "seed": s, "batch_size": 32, "steps": 16, "snapshots": (16,),
               "optimizer": "sgd", "learning_rate": lr, "n_train": 512}
              for s, lr in [(1, 0.05), (2, 0.05), (1, 0.2)]]


def test_train_many_returns_runs_in_order_and_caches_them(fresh_cache):
    runs = helpers.train_many(helpers.dense_net, TINY_SWEEP)
    assert [(r["seed"], r["learning_rate"]) for r in runs] == [
        (c["seed"], c["learning_rate"]) for c in TINY_SWEEP]
    assert not any(r["cached"] for r in runs)
    assert all(helpers.train(helpers.dense_net, **c, cache="peek") for c in TINY_SWEEP)
    again = helpers.train_many(helpers.dense_net, TINY_SWEEP)  # from the cache, no worker
    assert all(r["cached"] for r in again)
    for a, b in zip(runs, again, strict=True):
        assert a["test_accuracy"] == b["test_accuracy"]


def test_train_many_gives_the_same_runs_whatever_the_number_of_workers(tmp_path, monkeypatch):
    weights = {}
    for n_jobs in (1, 2):
        monkeypatch.setattr(helpers, "CACHE", tmp_path / str(n_jobs))
        helpers.memory.cache_clear()
        helpers._train_cached.cache_clear()
        weights[n_jobs] = [r["weights"] for r in helpers.train_many(
            helpers.dense_net, TINY_SWEEP, n_jobs=n_jobs)]
    helpers.memory.cache_clear()
    helpers._train_cached.cache_clear()
    for a, b in zip(weights[1], weights[2], strict=True):  # one TensorFlow thread per worker
        for wa, wb in zip(a, b, strict=True):
            np.testing.assert_array_equal(wa, wb)


def test_input_pipeline_gives_each_image_once_per_pass():
    x = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(10)
    helpers.set_seed(0)
    data = helpers._pipeline(x, y, batch_size=4, shuffle=True)
    assert data.cardinality().numpy() == 3  # Keras sees the epoch's length
    batches = [b[1].numpy() for b in data]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches)) == list(range(10))
    assert np.concatenate(batches).tolist() != list(range(10))  # shuffled
    stream = helpers._pipeline(x, y, batch_size=5, shuffle=True, repeat=True)
    ys = [b[1].numpy() for b in stream.take(4)]  # whole batches, one pass after another
    assert sorted(np.concatenate(ys[:2])) == sorted(np.concatenate(ys[2:])) == list(range(10))
    assert [b[1].numpy().tolist() for b in helpers._pipeline(x, y, 4)] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # no shuffle: in order (validation)


def test_input_pipeline_trains_exactly_as_fit_on_arrays():
    x, y = helpers.mnist_split(flatten=True, n_train=600)["train"]
    weights = []
    for arrays in (True, False):
        helpers.set_seed(1)  # before the pipeline: its shuffle takes the seed
        data, kwargs = (((x, y), {"batch_size": 64}) if arrays else
                        ((helpers._pipeline(x, y, 64, shuffle=True),), {"shuffle": False}))
        model = build_tiny()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(*data, epochs=2, verbose=0, **kwargs)
        weights.append(model.get_weights())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tf_data_autotuning_changes_speed_not_results(fresh_cache, monkeypatch):
    runs = {}
    for auto in (True, False):
        monkeypatch.setattr(helpers, "TF_DATA_AUTOTUNE", auto)
        runs[auto] = helpers.train(build_tiny, cache=False, **SETTINGS)
    for a, b in zip(runs[True]["weights"], runs[False]["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[True]["history"] == runs[False]["history"]
