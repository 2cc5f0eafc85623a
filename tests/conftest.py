import pytest

import helpers


@pytest.fixture(scope="session")
def mnist():
    """The real, verified MNIST arrays, keyed like Keras's mnist.npz."""
    (x_train, y_train), (x_test, y_test) = helpers.load_mnist()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def configured():
    """`configured(results=..., profile=...)` changes the settings for one test (through
    helpers.configure, the one documented way); they are restored afterwards."""
    previous = helpers.settings()
    yield helpers.configure
    helpers.configure(**previous.as_dict())
