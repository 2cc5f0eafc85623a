"""Models: the builders the chapters share, a fused batch-normalisation layer, ensembles, and
what a model costs (multiply-accumulates, inference speed).

A builder returns an uncompiled Keras model. `Net(builder, **arguments)` pairs a builder with its
arguments: what `training.train` trains, and what a chapter's results JSON records by name.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

from .results import jsonable


def _frozen(value: Any) -> Any:
    """Lists (as JSON gives them back) as tuples, so a configuration read from a results file is
    the same model as the one the notebook declared."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class Net:
    """A model builder and its arguments, e.g. `Net(conv_net, batch_norm=True)`. The arguments
    live in their own namespace: a builder argument named `seed` or `scale` is the builder's."""

    build: Callable
    kwargs: Mapping[str, Any]

    def __init__(self, build: Callable, /, **kwargs: Any):
        signature = inspect.signature(build)
        signature.bind(**kwargs)  # an argument the builder does not take is an error here
        object.__setattr__(self, "build", build)
        object.__setattr__(self, "kwargs", {k: _frozen(v) for k, v in sorted(kwargs.items())})

    @property
    def name(self) -> str:
        return self.build.__name__

    def make(self):
        """A new, untrained Keras model."""
        return self.build(**self.kwargs)

    def replace(self, **changes: Any) -> Net:
        return Net(self.build, **{**self.kwargs, **changes})

    def to_dict(self) -> dict[str, Any]:
        return {"builder": self.name, "arch": jsonable(dict(self.kwargs))}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Net:
        """The Net of a `to_dict()` record (builders of this module only)."""
        builders = {"dense_net": dense_net, "conv_net": conv_net,
                    "keras_mnist_cnn": keras_mnist_cnn, "student_cnn": student_cnn,
                    "augmented_dense_net": augmented_dense_net}
        if record["builder"] not in builders:
            raise ValueError(f"unknown builder {record['builder']!r}; known: {sorted(builders)}")
        return cls(builders[record["builder"]], **record["arch"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"


def dense_net(hidden: Sequence[int] = (256, 256), dropout: float = 0.0, n_inputs: int = 784,
              activation: str = "relu"):
    """A multilayer perceptron on flattened images: hidden layers of the given widths (ReLU, or
    another Keras activation such as "sigmoid"), each followed by dropout when dropout > 0, and a
    10-way softmax. hidden=() is softmax regression."""
    import keras

    layers = [keras.Input((n_inputs,))]
    for width in hidden:
        layers.append(keras.layers.Dense(width, activation=activation))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name="dense_" + "x".join(map(str, hidden or [0])))



def augmented_dense_net(hidden: Sequence[int] = (2048, 2048), dropout: float = 0.3,
                        augment: Sequence[float] | None = (0.1, 10.0, 0.1),
                        activation: str = "relu"):
    """An MLP that sees the augmented images a CNN sees: 28x28x1 images in (a Recipe with
    flatten=False), random translations by up to `shift` of the image size, rotations by up to
    `degrees` and zooms by up to `zoom` while training (`augment=(shift, degrees, zoom)`, as
    conv_net takes it; Keras preprocessing layers, inactive at test time), then flattened into
    dense_net's layers. Architecture against recipe (issue 28): the MLP trained on what the best
    CNN trained on. With augment=None it computes dense_net's function on flattened images.
    The augmentation layers are written out here rather than shared with conv_net, whose code
    (and so every CNN's cache key) would change with a shared helper."""
    import keras
    from keras import layers as kl

    stack = [keras.Input((28, 28, 1))]
    if augment:
        shift, degrees, zoom = augment
        fill = {"fill_mode": "constant"}
        stack += ([kl.RandomTranslation(shift, shift, **fill)] if shift else []) + (
            [kl.RandomRotation(degrees / 360, **fill)] if degrees else []) + (
            [kl.RandomZoom(zoom, **fill)] if zoom else [])
    stack.append(kl.Flatten())
    for width in hidden:
        stack.append(kl.Dense(width, activation=activation))
        if dropout:
            stack.append(kl.Dropout(dropout))
    stack.append(kl.Dense(10, activation="softmax"))
    return keras.Sequential(stack, name="augmented_dense_" + "x".join(map(str, hidden or [0])))


BN_MOMENTUM = 0.9  # running statistics as PyTorch keeps them (see conv_net)
BN_EPSILON = 1e-3  # Keras's default


@cache
def _fused_batch_norm_class():
    import keras
    import tensorflow as tf

    class FusedBatchNorm(keras.layers.Layer):
        """Batch normalisation over the last axis on TensorFlow's fused kernel.

        The same computation as `keras.layers.BatchNormalization(momentum, epsilon)` (scale
        gamma, shift beta, running mean and variance updated with the batch's biased variance),
        with the same weights in the same order, but one fused op for the moments and the
        normalisation (and one for its gradient) instead of Keras 3's separate ops, which made
        batch normalisation the most expensive layer of the CNNs on these CPUs. Dense inputs
        (batch, units) are normalised as (batch, 1, 1, units). As Keras's layer, it runs in
        inference mode (running statistics, none updated) when it is frozen (trainable=False),
        and keeps its statistics in float32 under a mixed-precision policy.
        """

        def __init__(self, momentum: float = BN_MOMENTUM, epsilon: float = BN_EPSILON,
                     **kwargs):
            super().__init__(**kwargs)
            self.momentum, self.epsilon = float(momentum), float(epsilon)

        def build(self, input_shape):
            if len(input_shape) not in (2, 4):
                raise ValueError("FusedBatchNorm normalises (batch, units) or (batch, height, "
                                 f"width, channels) inputs, not shape {tuple(input_shape)}")
            shape = (int(input_shape[-1]),)
            weight = {"shape": shape, "autocast": False}  # float32 under any policy
            self.gamma = self.add_weight(initializer="ones", name="gamma", **weight)
            self.beta = self.add_weight(initializer="zeros", name="beta", **weight)
            self.moving_mean = self.add_weight(initializer="zeros", name="moving_mean",
                                               trainable=False, **weight)
            self.moving_variance = self.add_weight(initializer="ones", name="moving_variance",
                                                   trainable=False, **weight)

        def call(self, inputs, training=False):
            x = inputs if len(inputs.shape) == 4 else inputs[:, None, None, :]
            dtype = x.dtype
            x = tf.cast(x, tf.float32)
            if training and self.trainable:  # frozen: inference mode, as Keras's layer
                y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                    x, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
                # the kernel returns the unbiased variance; Keras keeps the biased one
                n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
                variance = variance * (n - 1.0) / n
                keep = self.momentum
                self.moving_mean.assign(self.moving_mean * keep + mean * (1.0 - keep))
                self.moving_variance.assign(self.moving_variance * keep
                                            + variance * (1.0 - keep))
            else:
                y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                    x, self.gamma, self.beta, mean=self.moving_mean,
                    variance=self.moving_variance, epsilon=self.epsilon, is_training=False)
            y = tf.cast(y, dtype)
            return y if len(inputs.shape) == 4 else y[:, 0, 0, :]

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}

    return FusedBatchNorm


def batch_norm_layer(kind: str | bool = "fused", momentum: float = BN_MOMENTUM):
    """A batch-normalisation layer: "fused" (or True) on TensorFlow's fused kernel, "keras" as
    `keras.layers.BatchNormalization`; both compute the same thing (tests/test_models.py)."""
    import keras

    if kind in (True, "fused"):
        return _fused_batch_norm_class()(momentum=momentum, epsilon=BN_EPSILON)
    if kind == "keras":
        return keras.layers.BatchNormalization(momentum=momentum, epsilon=BN_EPSILON)
    raise ValueError(f"batch_norm must be False, True, 'fused' or 'keras', not {kind!r}")


def conv_net(filters: Sequence[int] = (32, 64), convs: int | Sequence[int] = 1,
             batch_norm: bool | str = False, dense: int = 0, dropout: float = 0.5,
             block_dropout: float = 0.0, augment: Sequence[float] | None = None):
    """A small CNN on 28x28x1 images, in the style of the Keras "simple MNIST convnet".

    One block per entry of `filters`: `convs` 3x3 convolutions ('valid' padding, ReLU; one count
    for every block, or one per block) with that many channels, then 2x2 max pooling, then
    dropout `block_dropout` when > 0. The head flattens, optionally applies a `dense`-unit ReLU
    layer, then dropout `dropout` and a 10-way softmax. batch_norm=True puts batch normalisation
    between every convolution (or dense layer) and its ReLU, with momentum 0.9 for its running
    statistics (PyTorch's default): with Keras's 0.99 the running variance is still far from the
    truth after one short epoch, and the network predicts badly at test time. The layer runs on
    TensorFlow's fused kernel (`batch_norm_layer`); batch_norm="keras" uses Keras's own layer,
    which computes the same thing more slowly (for comparisons: `make bench`).
    `augment=(shift, degrees, zoom)` adds random translations by up to `shift` of the image size,
    rotations by up to `degrees` and zooms by up to `zoom` (Keras preprocessing layers, active
    only in training; a 0 leaves that transform out). The defaults are the Keras example:
    Conv32-Pool-Conv64-Pool-Dropout(0.5)-Softmax, 34,826 parameters.
    """
    import keras
    from keras import layers as kl

    def unit(layer):
        if not batch_norm:
            return [layer, kl.ReLU()]
        layer.use_bias = False  # the normalisation's shift replaces the bias
        return [layer, batch_norm_layer(batch_norm), kl.ReLU()]

    stack = [keras.Input((28, 28, 1))]
    if augment:
        shift, degrees, zoom = augment
        fill = {"fill_mode": "constant"}
        stack += ([kl.RandomTranslation(shift, shift, **fill)] if shift else []) + (
            [kl.RandomRotation(degrees / 360, **fill)] if degrees else []) + (
            [kl.RandomZoom(zoom, **fill)] if zoom else [])
    per_block = [convs] * len(filters) if isinstance(convs, int) else list(convs)
    for width, count in zip(filters, per_block, strict=True):
        for _ in range(count):
            stack += unit(kl.Conv2D(width, 3))
        stack.append(kl.MaxPooling2D())
        if block_dropout:
            stack.append(kl.Dropout(block_dropout))
    stack.append(kl.Flatten())
    if dense:
        stack += unit(kl.Dense(dense))
    if dropout:
        stack.append(kl.Dropout(dropout))
    stack.append(kl.Dense(10, activation="softmax"))
    return keras.Sequential(stack, name="cnn_" + "_".join(map(str, filters)))


def keras_mnist_cnn():
    """The network of Keras 2's example `mnist_cnn.py` (the likeliest ancestor of a student's
    `mnistcnn.py`): Conv32-Conv64 (3x3, 'valid', ReLU), 2x2 max pooling, dropout 0.25, flatten,
    dense 128 (ReLU), dropout 0.5, 10-way softmax; 1,199,882 parameters, almost all in the dense
    layer, and about five times the Keras convnet's multiply-accumulates (the second convolution
    runs on the unpooled 26x26 maps)."""
    import keras
    from keras import layers as kl

    return keras.Sequential([
        keras.Input((28, 28, 1)), kl.Conv2D(32, 3, activation="relu"),
        kl.Conv2D(64, 3, activation="relu"), kl.MaxPooling2D(), kl.Dropout(0.25), kl.Flatten(),
        kl.Dense(128, activation="relu"), kl.Dropout(0.5), kl.Dense(10, activation="softmax"),
    ], name="keras_mnist_cnn")


def student_cnn():
    """The CNN of the student's `mnistcnn.py` (ts-39/MNIST), as its file describes it: Conv16 (3x3,
    'same', ReLU), 2x2 max pooling, Conv128 (3x3, 'valid', ReLU), pooling, Conv256 (3x3,
    'valid', ReLU), pooling, dropout 0.5, flatten, dense 128 (ReLU), dropout 0.25, 10-way
    softmax: 7.6 million multiply-accumulates per image, most in the third convolution."""
    import keras
    from keras import layers as kl

    return keras.Sequential([
        keras.Input((28, 28, 1)), kl.Conv2D(16, 3, padding="same", activation="relu"),
        kl.MaxPooling2D(), kl.Conv2D(128, 3, activation="relu"), kl.MaxPooling2D(),
        kl.Conv2D(256, 3, activation="relu"), kl.MaxPooling2D(), kl.Dropout(0.5), kl.Flatten(),
        kl.Dense(128, activation="relu"), kl.Dropout(0.25), kl.Dense(10, activation="softmax"),
    ], name="student_cnn")


def ensemble(models: Sequence) -> Any:
    """One Keras model whose output is the mean of the softmax outputs of `models` (an ensemble
    as chapter 04 scores it), so it can be timed and counted like any single model."""
    import keras

    inputs = keras.Input(tuple(models[0].inputs[0].shape[1:]))
    members = [keras.Sequential(m.layers, name=f"member_{i}")(inputs)
               for i, m in enumerate(models)]
    return keras.Model(inputs, keras.layers.Average()(members), name="ensemble")



def count_macs(model) -> int:
    """Multiply-accumulates of one forward pass of one image through a Keras model: in*out per
    Dense layer, out_h*out_w*k_h*k_w*in_channels*filters per Conv2D; everything else (pooling,
    normalisation at inference, activations) is counted as free, as is customary. Models nested
    in the model (an ensemble's members) are counted in full."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.units)
        elif isinstance(layer, keras.layers.Conv2D):
            out_h, out_w = layer.output.shape[1:3]
            k_h, k_w, c_in, c_out = layer.kernel.shape
            total += int(out_h * out_w * k_h * k_w * c_in * c_out)
    return total


def inference_speed(model, images: np.ndarray, batch: int = 1000, repeats: int = 30,
                    batch_repeats: int = 7) -> dict[str, float]:
    """Inference time of a Keras model on this machine, after a warm-up: the median latency of
    one image (`model.predict_on_batch` on a batch of 1, in milliseconds, over `repeats`) and the
    median throughput on a batch of `batch` images (images per second, over `batch_repeats`);
    each with its interquartile range."""
    import timeit

    one, many = images[:1], images[:batch]
    for x in (one, many):
        model.predict_on_batch(x)  # build and trace outside the timing
    single = 1000 * np.array(timeit.repeat(lambda: model.predict_on_batch(one),
                                           number=1, repeat=repeats))
    bulk = len(many) / np.array(timeit.repeat(lambda: model.predict_on_batch(many), number=1,
                                              repeat=batch_repeats))
    q = {name: np.percentile(v, [25, 50, 75]) for name, v in (("ms", single), ("ips", bulk))}
    return {"latency_ms": float(q["ms"][1]), "latency_ms_iqr": [float(v) for v in q["ms"][::2]],
            "throughput": float(q["ips"][1]),
            "throughput_iqr": [float(v) for v in q["ips"][::2]], "batch": len(many)}

