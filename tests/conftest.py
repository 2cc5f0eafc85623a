import pytest

import helpers


@pytest.fixture(scope="session")
def mnist():
    """The real, verified MNIST arrays, keyed like Keras's mnist.npz."""
    (x_train, y_train), (x_test, y_test) = helpers.load_mnist()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
