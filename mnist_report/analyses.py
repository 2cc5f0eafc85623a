"""Cached analyses: those of trained runs that need the runs' weights, and other expensive,
deterministic ones (chapter 01's t-SNE map), each cached under its code fingerprint and its
arguments (a run by the run's own key; cache.cached), and recorded in the ledger. A chapter
replayed on a fresh clone, whose runs come from the ledger without weights, gets their results
without retraining anything; only a change to an analysis's code makes it rebuild the runs it needs.

Each takes a training.TrainResult (`run`) or a list of them; the chapters call these instead of
`run.model()`.
"""

from __future__ import annotations

import numpy as np

from .cache import cached
from .config import SEED, set_seed
from .data import add_noise
from .probes import collapse_signature, gradient_noise_scale, recalibrate_batch_norm, saliency


@cached
def signature_of(run, images: np.ndarray, labels: np.ndarray, prior: np.ndarray | None = None
                 ) -> dict[str, float]:
    """probes.collapse_signature of a trained dense run (chapter 02's 12.63 % mechanism)."""
    return collapse_signature(run.model(), images, labels, prior=prior)


@cached
def scores_on(run, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) of a run on other images, as Keras's evaluate reports them (dropout off;
    chapter 02's training scores)."""
    model = run.model()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(images, labels, batch_size=2000, verbose=0)
    return float(loss), float(accuracy)


@cached
def calibration_of(run, val_images: np.ndarray, val_labels: np.ndarray,
                   test_images: np.ndarray, test_labels: np.ndarray) -> dict[str, float]:
    """stats.temperature_calibration of a run: its temperature fitted on the validation images
    (never on test), and its test calibration before and after scaling, all from its float32
    predictions (dropout and augmentation off)."""
    from .stats import temperature_calibration

    model = run.model()
    return temperature_calibration(model.predict(val_images, batch_size=2000, verbose=0),
                                   val_labels,
                                   model.predict(test_images, batch_size=2000, verbose=0),
                                   test_labels)


def fit_summary(run, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How well a run fits its training images (`images`, `labels`; dropout off, scores_on)
    against the test set, and where its validation loss bottomed out (chapter 02)."""
    train_loss, train_accuracy = scores_on(run, images, labels)
    val = np.array(run.history["val_loss"])
    return {"train loss": train_loss, "train accuracy": train_accuracy,
            "test loss": run.test_loss, "test accuracy": run.test_accuracy,
            "best validation epoch": int(val.argmin()) + 1,
            "final vs best validation loss": float(val[-1] / val.min() - 1)}


@cached
def layer_kernel(run, layer_type: str = "Dense") -> np.ndarray:
    """The kernel of a run's first layer of `layer_type` ("Dense", "Conv2D"): templates and
    filters to draw."""
    model = run.model()
    layer = next(layer for layer in model.layers if type(layer).__name__ == layer_type)
    return layer.get_weights()[0]


@cached
def first_layer_change(run, images: np.ndarray) -> dict[str, float | int | None]:
    """What training did to a dense run's first layer: pixels blank in every one of `images` (its
    training images), units left unchanged, dead units (never positive on `images`), and how far
    live and dead units moved from their initial weights (the run's seed rebuilds them)."""
    weights = run.weights
    w_first, bias = weights[0], weights[1]
    set_seed(run.seed)
    w_init = run.net.make().get_weights()[0]
    blank = (images == 0).all(0)
    unchanged = (w_first == w_init).all(1)
    dead = (images @ w_first + bias).max(0) <= 0
    init_corr = np.array([np.corrcoef(w_first[:, j], w_init[:, j])[0, 1]
                          for j in range(w_first.shape[1])])
    moved = np.linalg.norm(w_first - w_init, axis=0) / np.linalg.norm(w_init, axis=0)
    return {"blank_pixels": int(blank.sum()), "blank_unchanged": int((unchanged & blank).sum()),
            "other_unchanged": int((unchanged & ~blank).sum()), "dead_units": int(dead.sum()),
            "units": int(w_first.shape[1]),
            "median_init_corr": float(np.median(init_corr[~dead])),
            "median_change_live": float(np.median(moved[~dead])),
            "median_change_dead": float(np.median(moved[dead])) if dead.any() else None}


@cached
def noise_scale_of(run, images: np.ndarray, labels: np.ndarray, n_small: int
                   ) -> dict[str, float]:
    """probes.gradient_noise_scale of a trained run (chapter 03)."""
    return gradient_noise_scale(run.model(), images, labels, n_small=n_small)


@cached
def ensemble_accuracy(runs: list, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the mean of the runs' predicted probabilities on `images` (chapter 04 chooses
    its ensemble on validation images with it)."""
    proba = np.mean([run.model().predict(images, batch_size=1000, verbose=0) for run in runs],
                    axis=0)
    return float((proba.argmax(1) == labels).mean())


@cached
def noisy_accuracy(run, images: np.ndarray, labels: np.ndarray, sigma: float, adapt_on=None
                   ) -> float:
    """Accuracy on `images` with Gaussian noise of `sigma` (data.add_noise); with `adapt_on`
    (clean training images), the batch-normalisation statistics are first re-estimated on them
    with the same noise (AdaBN: probes.recalibrate_batch_norm)."""
    model = run.model()
    if adapt_on is not None:
        recalibrate_batch_norm(model, add_noise(adapt_on, sigma, seed=1))
    x = add_noise(images, sigma)
    return float((model.predict(x, batch_size=1000, verbose=0).argmax(1) == labels).mean())


@cached
def feature_maps(run, images: np.ndarray) -> list[np.ndarray]:
    """The activations after the ReLU that follows each convolution of a convolutional run."""
    import keras

    model = run.model()
    n_convs = sum(type(layer).__name__ == "Conv2D" for layer in model.layers)
    relus = [layer for layer in model.layers if type(layer).__name__ == "ReLU"][:n_convs]
    probe = keras.Model(model.inputs[0], [layer.output for layer in relus])
    return [np.asarray(m) for m in probe(images, training=False)]


@cached
def saliency_of(run, images: np.ndarray) -> np.ndarray:
    """probes.saliency of a trained run."""
    return saliency(run.model(), images)


@cached
def first_layer_sample(run, images: np.ndarray, n: int = 40, seed: int = SEED) -> dict:
    """`n` random first-layer units of a dense run (drawn with `seed`): their weight columns and
    whether each is dead (never positive on `images`), for a figure of what the units learned."""
    w_first, bias = run.weights[0], run.weights[1]
    rng = np.random.default_rng(seed)
    units = rng.choice(w_first.shape[1], size=min(n, w_first.shape[1]), replace=False)
    dead = (images @ w_first + bias).max(0) <= 0
    return {"units": units, "weights": w_first[:, units], "dead": dead[units]}


@cached
def tsne_2d(images: np.ndarray, seed: int, perplexity: float = 30) -> np.ndarray:
    """A 2-D t-SNE map of flattened images, after a 50-component PCA (scikit-learn, seeded)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=50, random_state=seed).fit_transform(images)
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seed).fit_transform(reduced)


@cached
def inference_timing(net, images: np.ndarray, members: int = 1) -> dict:
    """models.inference_speed of `net` (freshly built: timing does not depend on the weights; an
    ensemble of `members` copies when members > 1), with the CPU that measured it ("machine").
    A timing is a measurement, not a function of the code: cached, a replay from the ledger
    serves the recorded one and names the machine it came from instead of timing again."""
    from .models import ensemble, inference_speed
    from .results import cpu_description

    model = ensemble([net.make() for _ in range(members)]) if members > 1 else net.make()
    return {**inference_speed(model, images), "machine": cpu_description()}
