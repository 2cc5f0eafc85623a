"""The results cache can never serve a result the current code would not produce: its key covers
the training path, the builder, the builder's arguments, the recipe and the seed."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import helpers
from helpers import Net, Recipe
from mnist_report import cache, training

RECIPE = Recipe(epochs=1, batch_size=64, n_train=256, n_eval=200)


def test_the_recorded_fingerprint_is_the_training_code_as_it_is():
    """Fails whenever the training path changed and nobody recorded it. If the change alters
    results, raise TRAINING_VERSION in mnist_report/training.py; in any case record the new
    fingerprint there (`python -m mnist_report.training` prints it)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != training.TRAINING_PYTHON:
        pytest.skip(f"the fingerprint is recorded for Python {training.TRAINING_PYTHON}")
    live = training.training_fingerprint()
    assert live == training.TRAINING_FINGERPRINT, (
        f"The training code changed (fingerprint {live}, recorded "
        f"{training.TRAINING_FINGERPRINT}). If results change, raise TRAINING_VERSION "
        f"(now {training.TRAINING_VERSION}); then set TRAINING_FINGERPRINT = {live!r}.")
    assert training.training_code() == f"v{training.TRAINING_VERSION}"


def test_the_fingerprint_covers_every_function_that_shapes_a_result():
    reach = set(cache.code_reach(training._train_impl))
    for name in ("training._train_impl", "training._pipeline", "training._schedule",
                 "training._steps_per_call", "training._scores", "training._snapshot",
                 "training._recorder_class", "data.mnist_split", "data.pixel_permutation",
                 "data.load_mnist", "probes.diagnostics", "probes.loss_and_gradients",
                 "config.set_seed"):
        assert f"mnist_report.{name}" in reach, name
    conv = set(cache.code_reach(helpers.conv_net))
    assert {"mnist_report.models.batch_norm_layer",
            "mnist_report.models._fused_batch_norm_class"} <= conv


def test_constants_the_training_path_reads_are_part_of_its_fingerprint(monkeypatch):
    before = training.training_fingerprint()
    monkeypatch.setattr(training, "TRAIN_PROBE", training.TRAIN_PROBE + 1)
    assert training.training_fingerprint() != before


def test_unrecorded_training_code_is_cached_apart(monkeypatch):
    net = Net(helpers.dense_net, hidden=(8,))
    recorded = training.run_key(net, RECIPE, 0)
    monkeypatch.setattr(training, "TRAINING_FINGERPRINT", "0" * 16)  # as after an edit
    assert training.training_code().startswith(f"v{training.TRAINING_VERSION}+")
    assert training.run_key(net, RECIPE, 0) != recorded
    monkeypatch.undo()
    monkeypatch.setattr(training, "TRAINING_VERSION", training.TRAINING_VERSION + 1)
    assert training.run_key(net, RECIPE, 0) != recorded  # a version bump retires old entries


def test_a_stale_entry_cannot_be_served(tmp_path, monkeypatch):
    previous = helpers.configure(cache=tmp_path)
    try:
        net = Net(helpers.dense_net, hidden=(8,))
        helpers.train(net, RECIPE, seed=0)
        assert helpers.is_cached(net, RECIPE, 0)
        monkeypatch.setattr(training, "TRAINING_FINGERPRINT", "0" * 16)
        assert not helpers.is_cached(net, RECIPE, 0)
        assert helpers.train(net, RECIPE, seed=0).cached is False
    finally:
        helpers.configure(**previous.as_dict())


def test_a_builder_edit_changes_the_key_but_not_a_comment(tmp_path, monkeypatch):
    source = textwrap.dedent('''
        import keras

        WIDTH = 8


        def build():
            # a comment
            return keras.Sequential([keras.Input((784,)), keras.layers.Dense(WIDTH),
                                     keras.layers.Dense(10, activation="softmax")])
    ''')
    keys = {}
    variants = {"original": source, "comment": source.replace("# a comment", "# another one"),
                "moved": "\n\n" + source, "constant": source.replace("WIDTH = 8", "WIDTH = 9"),
                "code": source.replace("Dense(WIDTH)", "Dense(WIDTH, use_bias=False)")}
    for i, (name, text) in enumerate(variants.items()):
        module = f"builder_variant_{i}"
        (tmp_path / f"{module}.py").write_text(text)
        monkeypatch.syspath_prepend(str(tmp_path))
        build = __import__(module).build
        keys[name] = training.run_key(Net(build), RECIPE, 0)
    assert keys["comment"] == keys["moved"] == keys["original"]
    assert len({keys["original"], keys["constant"], keys["code"]}) == 3


KEY_OF_A_RUN = """
import helpers
from mnist_report import training
net = helpers.Net(helpers.conv_net, batch_norm=True)
recipe = helpers.Recipe(batch_size=128, epochs=3, schedule="onecycle", flatten=False)
print(training.run_key(net, recipe, 0))
"""


def _key_in_a_copy(tmp_path, name, edit=None):
    """The cache key of one run, computed by a fresh interpreter on a copy of the package in
    which `edit(path_to_copy)` changed the code."""
    copy = tmp_path / name
    shutil.copytree(helpers.ROOT / "mnist_report", copy / "mnist_report",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(helpers.ROOT / "helpers.py", copy / "helpers.py")
    if edit:
        edit(copy / "mnist_report")
    done = subprocess.run([sys.executable, "-c", KEY_OF_A_RUN], cwd=copy, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(copy)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _replace(relative, old, new):
    def edit(package):
        path = package / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    return edit


def test_changing_a_function_of_the_training_path_in_a_copy_changes_the_key(tmp_path):
    original = _key_in_a_copy(tmp_path, "original")
    assert original == training.run_key(Net(helpers.conv_net, batch_norm=True), Recipe(
        batch_size=128, epochs=3, schedule="onecycle", flatten=False), 0)
    edits = {  # one behaviour change in each function the issue named, and in the builder
        "scores": _replace("training.py", "range(0, len(x), 2500)", "range(0, len(x), 2000)"),
        "schedule": _replace("training.py", "decay_steps=total_steps - warm",
                             "decay_steps=total_steps - warm + 1"),
        "pipeline": _replace("training.py", "data = data.repeat() if repeat",
                             "data = data.repeat(2) if repeat"),
        "split": _replace("data.py", "x = x / 255.0 if part in scaled else x",
                          "x = x / 256.0 if scale else x"),
        "recorder": _replace("training.py", "self.next_curve = step * CURVE_FACTOR",
                             "self.next_curve = step * CURVE_FACTOR + 1"),
        "batch norm": _replace("models.py", "variance = variance * (n - 1.0) / n",
                               "variance = variance * n / n"),
    }
    for name, edit in edits.items():
        assert _key_in_a_copy(tmp_path, name.replace(" ", "_"), edit) != original, name
    comment = _replace("training.py", "def _scores(", "# a comment\ndef _scores(")
    assert _key_in_a_copy(tmp_path, "comment", comment) == original


square_calls = []  # module state (lower case): not part of any fingerprint


def test_cached_functions_are_keyed_by_their_code_and_arguments(configured, tmp_path):
    configured(cache=tmp_path)
    square_calls.clear()

    def square(x, power=2):
        square_calls.append(x)
        return x ** power

    cached = helpers.cached(square)
    assert cached(3) == 9 and cached(3) == 9 and square_calls == [3]
    assert cached(3, power=3) == 27 and square_calls == [3, 3]

    def square(x, power=2):  # noqa: F811 (the same name, other code)
        square_calls.append(x)
        return x ** power + 0

    assert helpers.cached(square)(3) == 9 and square_calls == [3, 3, 3]


def _fingerprint_of_module(tmp_path, monkeypatch, name, source, attribute="build"):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return cache.code_fingerprint(getattr(__import__(name), attribute))


def test_nested_and_container_constants_and_list_defaults_enter_the_fingerprint(
        tmp_path, monkeypatch):
    template = """
        CONFIG = {{"a": {{"b": {b}}}}}
        SIZES = [{size}, 2]


        def build(widths=[{width}]):
            return CONFIG, SIZES, widths
    """
    prints = {_fingerprint_of_module(tmp_path, monkeypatch, f"constants_{i}",
                                     template.format(b=b, size=size, width=width))
              for i, (b, size, width) in enumerate([(1, 1, 1), (9, 1, 1), (1, 9, 1), (1, 1, 9)])}
    assert len(prints) == 4


def test_what_a_closure_captured_enters_the_fingerprint():
    def make_builder(width):
        def build():
            return width
        return build

    assert cache.code_fingerprint(make_builder(8)) != cache.code_fingerprint(make_builder(512))
    assert training.run_key(Net(make_builder(8)), RECIPE, 0) != training.run_key(
        Net(make_builder(512)), RECIPE, 0)


def test_a_recipe_default_is_part_of_the_training_fingerprint(monkeypatch):
    before = training.training_fingerprint()
    monkeypatch.setattr(Recipe, "learning_rate", 0.002)  # as if the default were edited
    assert training.training_fingerprint() != before


def test_a_set_literal_gives_the_same_fingerprint_whatever_the_hash_seed(tmp_path):
    (tmp_path / "with_a_set.py").write_text(
        "def build(kind):\n    return kind in {'fused', 'keras', 'none', True, 'x'}\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from mnist_report import cache; "
            "import with_a_set; print(cache.code_fingerprint(with_a_set.build))")
    prints = {subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)},
                             cwd=helpers.ROOT, check=True).stdout for seed in (1, 2, 3)}
    assert len(prints) == 1


def test_process_numerics_that_are_not_defaults_enter_the_key():
    import keras

    net = Net(helpers.dense_net, hidden=(8,))
    plain = training.run_key(net, RECIPE, 0)
    assert training.run_key(net, RECIPE, 0, threads=1) != plain  # a train_many worker
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert training.run_key(net, RECIPE, 0) != plain
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert training.run_key(net, RECIPE, 0) == plain
