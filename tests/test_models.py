"""The model builders, the fused batch-normalisation layer, ensembles and cost counts."""

import numpy as np
import pytest

import helpers
from mnist_report import models


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


def test_augmented_dense_net_is_dense_net_on_augmented_images():
    import keras

    keras.utils.set_random_seed(0)
    model = helpers.augmented_dense_net(hidden=(32,), dropout=0.0, augment=(0.2, 20, 0.1))
    plain = helpers.dense_net(hidden=(32,), dropout=0.0)  # no dropout: training differs by
    # the augmentation alone
    assert model.count_params() == plain.count_params()  # augmentation has no weights
    plain.set_weights(model.get_weights())
    x = helpers.mnist_split(n_train=100)["test"][0][:8]
    inference = model(x, training=False).numpy()
    np.testing.assert_allclose(inference, plain(x.reshape(8, -1), training=False).numpy(),
                               atol=1e-6)  # at test time: the MLP on the flattened image
    assert not np.allclose(model(x, training=True).numpy(), inference, atol=1e-4)
    names = [type(layer).__name__ for layer in model.layers[:4]]
    assert names == ["RandomTranslation", "RandomRotation", "RandomZoom", "Flatten"]
    bare = helpers.augmented_dense_net(hidden=(32,), augment=None)
    assert type(bare.layers[0]).__name__ == "Flatten"
    net = helpers.Net(helpers.augmented_dense_net, hidden=(32,))
    assert helpers.Net.from_dict(net.to_dict()) == net  # a headline model can be read back


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


@pytest.mark.parametrize("shape", [(64, 12, 12, 8), (64, 16)])
def test_fused_batch_norm_computes_what_keras_batch_normalization_computes(shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype(np.float32)
    fused, reference = models.batch_norm_layer("fused"), models.batch_norm_layer("keras")
    for layer in (fused, reference):
        layer.build(x.shape)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in reference.get_weights()]
    weights[3] = np.abs(weights[3]) + 0.5  # a running variance
    fused.set_weights(weights)
    reference.set_weights(weights)
    assert [w.name for w in fused.weights] == [w.name for w in reference.weights]
    for step in range(3):  # training: batch statistics, and the running ones updated alike
        np.testing.assert_allclose(fused(x + step, training=True).numpy(),
                                   reference(x + step, training=True).numpy(), atol=2e-5)
        for a, b in zip(fused.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False).numpy(),  # inference: running statistics
                               reference(x, training=False).numpy(), atol=2e-5)


def test_fused_batch_norm_gives_keras_gradients():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(1).normal(size=(32, 6, 6, 4)).astype(np.float32))
    grads = []
    for kind in ("fused", "keras"):
        layer = models.batch_norm_layer(kind)
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) ** 3)
        grads.append(tape.gradient(loss, [x, *layer.trainable_weights]))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)


def test_conv_net_uses_the_fused_layer_and_can_use_keras_layer():
    names = {kind: [type(layer).__name__ for layer in helpers.conv_net(batch_norm=kind).layers]
             for kind in (True, "keras")}
    assert "FusedBatchNorm" in names[True] and "BatchNormalization" in names["keras"]
    assert helpers.conv_net(batch_norm=True).count_params() == helpers.conv_net(
        batch_norm="keras").count_params()
    with pytest.raises(ValueError, match="batch_norm must be"):
        helpers.conv_net(batch_norm="batch")


def test_net_keeps_builder_arguments_apart_and_round_trips_through_json():
    import json

    net = helpers.Net(helpers.conv_net, filters=[4, 8], batch_norm=True)
    assert net.kwargs == {"batch_norm": True, "filters": (4, 8)} and net.name == "conv_net"
    again = helpers.Net.from_dict(json.loads(json.dumps(net.to_dict())))
    assert again == net and repr(again) == "conv_net(batch_norm=True, filters=(4, 8))"
    with pytest.raises(TypeError):  # an argument the builder does not take
        helpers.Net(helpers.conv_net, seed=3)
    with pytest.raises(ValueError, match="unknown builder"):
        helpers.Net.from_dict({"builder": "mystery_net", "arch": {}})


def test_fused_batch_norm_behaves_as_keras_when_frozen_under_bfloat16_and_on_bad_shapes():
    import keras

    x = (np.random.default_rng(2).normal(size=(16, 6, 6, 4)) * 2 + 1).astype(np.float32)
    frozen = {}
    for kind in ("fused", "keras"):
        layer = models.batch_norm_layer(kind)
        layer.build(x.shape)
        layer.trainable = False  # inference mode: running statistics, none updated
        frozen[kind] = layer(x, training=True).numpy()
        np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(4, np.float32))
    np.testing.assert_allclose(frozen["fused"], frozen["keras"], atol=2e-5)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = models.batch_norm_layer("fused")
        assert layer(x, training=True).dtype == "bfloat16"
        assert all(w.dtype == "float32" for w in layer.weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match="normalises"):
        models.batch_norm_layer("fused")(np.zeros((2, 3, 4), np.float32))


def test_keras_mnist_cnn_is_the_keras_2_example():
    import keras

    model = helpers.keras_mnist_cnn()
    # conv 320 + conv 18,496 + dense 9216*128+128 + dense 1290, as the example's summary prints
    assert model.count_params() == 320 + 18_496 + 1_179_776 + 1_290 == 1_199_882
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense",
                     "Dropout", "Dense"]
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.25, 0.5]
    assert helpers.count_macs(model) == (26 * 26 * 9 * 32 + 24 * 24 * 9 * 32 * 64
                                         + 9216 * 128 + 128 * 10)
    assert helpers.Net.from_dict(helpers.Net(helpers.keras_mnist_cnn).to_dict()).name == (
        "keras_mnist_cnn")


@pytest.mark.parametrize("kind", ["fused", "keras"])
def test_recalibrated_batch_norm_holds_the_statistics_of_its_inputs(kind):
    """AdaBN: each normalisation layer's running mean and variance become the moments of what
    reaches it from the images (earlier layers in inference mode), whatever they were before."""
    import keras

    keras.utils.set_random_seed(0)
    model = helpers.conv_net(batch_norm=kind, dense=16, augment=(0.2, 20, 0.1))
    x = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype(np.float32)
    assert helpers.recalibrate_batch_norm(model, x, chunk=24) is model
    bns = [layer for layer in model.layers if "Norm" in type(layer).__name__]
    assert len(bns) == 3
    for bn in bns:
        inputs = keras.Model(model.inputs[0], bn.input)(x, training=False).numpy()
        axes = tuple(range(inputs.ndim - 1))
        np.testing.assert_allclose(bn.moving_mean.numpy(), inputs.mean(axes), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(bn.moving_variance.numpy(), inputs.var(axes), rtol=1e-3,
                                   atol=1e-6)


def test_student_cnn_is_the_network_of_the_students_mnistcnn_py():
    import keras

    model = helpers.student_cnn()
    # conv 16*9+16, conv 128*(9*16)+128, conv 256*(9*128)+256, dense 1024*128+128, dense 1290
    assert model.count_params() == 160 + 18_560 + 295_168 + 131_200 + 1_290
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
                     "Dropout", "Flatten", "Dense", "Dropout", "Dense"]
    assert [d.rate for d in model.layers if isinstance(d, keras.layers.Dropout)] == [0.5, 0.25]
    assert helpers.count_macs(model) == (28 * 28 * 9 * 16 + 12 * 12 * 9 * 16 * 128
                                         + 4 * 4 * 9 * 128 * 256 + 1024 * 128 + 128 * 10)
    assert 7.5e6 < helpers.count_macs(model) < 7.7e6  # "about 7.6 M" (issue 27)
    assert helpers.Net.from_dict(helpers.Net(helpers.student_cnn).to_dict()).name == "student_cnn"
