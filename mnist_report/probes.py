"""Probes: what a trained network does. Collapse diagnostics, the gradient noise scale, saliency,
accuracy on perturbed test images (cached like training runs), and batch-normalisation
statistics re-estimated on other inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import cache
from .config import SEED, THRESHOLDS
from .data import PERTURBATIONS


def loss_and_gradients(model, x: np.ndarray, y: np.ndarray):
    """(probabilities, mean cross-entropy, gradients of the trainable weights) on (x, y)."""
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        proba = model(x, training=False)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, proba))
    return proba, loss, tape.gradient(loss, model.trainable_variables)


def diagnostics(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """What a collapse looks like from inside, on a probe batch: loss, the gradient's global norm,
    the first layer's weight and pre-activation scale (root mean square), the fraction of its
    ReLU units that are zero for every probe image, and the mean top softmax probability."""
    import keras
    import tensorflow as tf

    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    proba, loss, grads = loss_and_gradients(model, x, y)
    kernel, bias = (w.numpy() for w in first.weights)
    z = x @ kernel + bias
    return {"loss": float(loss), "grad_norm": float(tf.linalg.global_norm(grads)),
            "weight_rms": float(np.sqrt(np.mean(kernel.astype(np.float64) ** 2))),
            "preact_rms": float(np.sqrt(np.mean(z.astype(np.float64) ** 2))),
            "dead_fraction": float(np.mean(np.all(z <= 0, axis=0))),
            "top_probability": float(tf.reduce_mean(tf.reduce_max(proba, axis=1)))}


def outcome(run, collapsed_share: float | None = None) -> str:
    """How a run ended: "diverged" (its loss became non-finite), "collapsed" (at least
    `collapsed_share`, by default THRESHOLDS["COLLAPSED_SHARE"], of its test predictions are one
    class) or "trained" (however far)."""
    share_limit = THRESHOLDS["COLLAPSED_SHARE"] if collapsed_share is None else collapsed_share
    if run.diverged_at is not None or not np.isfinite(run.test_loss):
        return "diverged"
    predictions = run.test_predictions
    share = np.bincount(predictions, minlength=10).max() / len(predictions)
    return "collapsed" if share >= share_limit else "trained"


def collapse_signature(model, x: np.ndarray, y: np.ndarray, prior: np.ndarray | None = None
                       ) -> dict[str, float]:
    """How far a trained dense network is from ignoring its input, on images x with labels y.

    Per hidden layer, the fraction of *responsive* units (output not constant over the images:
    max - min > 1e-3; a dead ReLU or a saturated sigmoid is not); of the predictions, the share
    of the most-predicted class, the number of classes predicted, and the mean Kullback-Leibler
    divergence (nats) of each image's predicted distribution from the label `prior` (class shares
    of y if not given). A network that ignores its input predicts one distribution for every
    image: at best the prior, scoring the largest class share and a loss of the prior's entropy.
    """
    import keras

    prior = np.bincount(y, minlength=10) / len(y) if prior is None else np.asarray(prior)
    out, alive = np.asarray(x, dtype=np.float32), []
    for layer in model.layers[:-1]:
        out = layer(out, training=False)
        if isinstance(layer, keras.layers.Dense):
            a = np.asarray(out)
            alive.append(float(np.mean(a.max(0) - a.min(0) > 1e-3)))
    proba = np.asarray(model(np.asarray(x, dtype=np.float32), training=False), dtype=np.float64)
    pred = proba.argmax(1)
    counts = np.bincount(pred, minlength=10)
    kl = np.sum(proba * (np.log(np.clip(proba, 1e-12, None)) - np.log(prior)), axis=1)
    return {"accuracy": float((pred == y).mean()),
            "loss": float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)))),
            **{f"alive_layer{i + 1}": v for i, v in enumerate(alive)},
            "mode_share": float(counts.max() / len(y)),
            "classes_predicted": int((counts > 0).sum()), "kl_from_prior": float(kl.mean()),
            "prior_entropy": float(-(prior * np.log(prior)).sum()),
            "ceiling_constant": float(np.bincount(y, minlength=10).max() / len(y))}


def gradient_noise_scale(model, x: np.ndarray, y: np.ndarray, small: int = 16,
                         n_small: int = 256, seed: int = SEED) -> dict[str, float]:
    """The "simple" gradient noise scale B = tr(Sigma) / |G|^2 of McCandlish et al. (2018), which
    predicts the critical batch size: Sigma is the per-example gradient covariance, G the true
    gradient. Estimated without per-example gradients from squared gradient norms at two batch
    sizes (their appendix A): the full (x, y) and `n_small` random batches of `small` images."""
    import tensorflow as tf

    def squared_norm(xb, yb) -> float:
        return float(tf.linalg.global_norm(loss_and_gradients(model, xb, yb)[2]) ** 2)

    big = len(y)
    g2_big = squared_norm(x, y)
    rng = np.random.default_rng(seed)
    batches = (rng.choice(big, small, replace=False) for _ in range(n_small))
    g2_small = float(np.mean([squared_norm(x[i], y[i]) for i in batches]))
    true_g2 = (big * g2_big - small * g2_small) / (big - small)
    trace_sigma = (g2_small - g2_big) / (1 / small - 1 / big)
    return {"noise_scale": trace_sigma / true_g2, "trace_sigma": trace_sigma,
            "gradient_sq_norm": true_g2}



def saliency(model, images: np.ndarray) -> np.ndarray:
    """|d p(predicted class) / d pixel| for each image (Simonyan et al., 2014): which pixels the
    prediction is most sensitive to. Same shape as `images`."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        proba = model(x, training=False)
        top = tf.reduce_max(proba, axis=1)
    return np.abs(tape.gradient(top, x).numpy())



def recalibrate_batch_norm(model, images: np.ndarray, chunk: int = 1000):
    """The model with every batch-normalisation layer's running mean and variance replaced by the
    statistics of its inputs over `images` (AdaBN, Li et al. 2017): the test of whether a network
    fails on shifted inputs because its normalisation statistics no longer fit them. The layers
    are visited in order, each seeing the outputs of the already recalibrated layers before it
    in inference mode (no augmentation, no dropout). A Sequential model; changed in place and
    returned."""
    from .models import batch_norm_layer

    bn_types = (type(batch_norm_layer("fused")), type(batch_norm_layer("keras")))
    x = np.asarray(images, dtype=np.float32)
    for layer in model.layers:
        if isinstance(layer, bn_types):
            axes = tuple(range(x.ndim - 1))
            layer.moving_mean.assign(x.mean(axis=axes))
            layer.moving_variance.assign(x.var(axis=axes))
        x = np.concatenate([np.asarray(layer(x[i:i + chunk], training=False))
                            for i in range(0, len(x), chunk)])
    return model


def _perturbed_accuracy_impl(result, images: np.ndarray, labels: np.ndarray, perturbation: str,
                             levels: tuple, flat: bool) -> list[float]:
    model = result.model()
    accuracies = []
    for level in levels:
        x = PERTURBATIONS[perturbation](images, level)
        x = x.reshape(len(x), -1) if flat else x
        pred = model.predict(x, batch_size=1000, verbose=0).argmax(1)
        accuracies.append(float((pred == labels).mean()))
    return accuracies


def perturbed_accuracy(result, images: np.ndarray, labels: np.ndarray, perturbation: str,
                       levels: Sequence[float], flat: bool = False) -> list[float]:
    """Test accuracy of a trained run (a training.TrainResult) on `images` perturbed at each of
    `levels` by data.PERTURBATIONS[perturbation] (shift in pixels, rotation in degrees, noise
    sigma); `flat` feeds the images as vectors. Cached like a training run (and recorded in the
    ledger), keyed by the code (this function's path, the builder), the builder's arguments, the
    run's own cache key (which covers all that shaped its weights), the images and the levels,
    so a warm rerun, or one from the ledger, predicts nothing."""
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {sorted(PERTURBATIONS)}, "
                         f"not {perturbation!r}")
    images, labels = np.asarray(images), np.asarray(labels)
    key = cache.key_of({
        "code": cache.code_fingerprint(_perturbed_accuracy_impl, PERTURBATIONS[perturbation]),
        "builder_code": cache.code_fingerprint(result.net.build), "arch": dict(result.net.kwargs),
        "run": result.cache_key or cache.array_digest(result.weights),
        "data": cache.array_digest(images, labels),
        "perturbation": perturbation, "levels": list(levels), "flat": flat,
        "packages": cache.package_versions(("scipy",))})  # scipy.ndimage shifts and rotates
    accuracies, _ = cache.fetch("perturbed", key, f"{perturbation} of {result.net.name}")
    if accuracies is None:
        with cache.computing():
            accuracies = _perturbed_accuracy_impl(result, images, labels, perturbation,
                                                  tuple(levels), flat)
        cache.store("perturbed", key, accuracies)
    return accuracies
