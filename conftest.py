"""pytest configuration for the whole project (unit tests and nbval alike).

Tests always run the smoke profile, so no test can overwrite the committed figures/ and results/.
This runs before helpers is imported and before nbval starts any kernel (kernels inherit it).
"""

import os

os.environ["MNIST_PROFILE"] = "smoke"
