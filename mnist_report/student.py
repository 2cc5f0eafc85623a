"""The student's programs (the public repository ts-39/MNIST) as the report's recipes, with where
they come from and the numbers the student recorded. Their code is described, not copied.

    net, recipe = student.dense_program(batch_size=128)   # mnist.py as committed
    net, recipe = student.cnn_program()                    # mnistcnn.py with its fit() active

One 100-epoch run with a snapshot after every epoch gives every shorter run (a constant learning
rate: the state after epoch e is that of an e-epoch run), with validation and test scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .models import Net, dense_net, student_cnn
from .training import Recipe

REPOSITORY = "ts-39/MNIST"
# The files as read (commit of the stored version), and what each does.
FILES: dict[str, dict[str, str]] = {
    "README.md": {"commit": "ebe7cae1064d1137d7be1cd6a5cda4533c217dc7",
                  "what": "the write-up (../shared/student_writeup.md, word for word)"},
    "mnist.py": {"commit": "21f828225c99a201d9bc8fe37bcca34c4e4035ce",
                 "what": "the dense network: 784 -> Dense(64, ReLU) -> Dense(10, softmax) "
                         "(a Dense(256) line commented out), RMSprop at Keras's defaults, "
                         "batch 2048, 100 epochs, pixels / 255, the 48,000/12,000 split; a "
                         "comment records both batch sizes' test loss and accuracy"},
    "mnistcnn.py": {"commit": "21f828225c99a201d9bc8fe37bcca34c4e4035ce",
                    "what": "the CNN (models.student_cnn), Adam at Keras's defaults, the same "
                            "data; its fit() call (batch 2048, 100 epochs) is commented out, so "
                            "the file as committed scores an untrained network"},
    "requirements.txt": {"commit": "858710370e4515c6e62a28274839b78095b9c2be",
                         "what": "tensorflow 2.17.0, keras 3.5.0, numpy 1.26.4, scikit-learn "
                                 "1.5.1 (make student-env)"},
}
# The numbers mnist.py's comment records, to full precision (test loss, test accuracy).
RECORDED = {
    "dense_batch128": {"loss": 2.3576579093933105, "accuracy": 0.12630000710487366},
    "dense_batch2048": {"loss": 0.2842666804790497, "accuracy": 0.9205999970436096},
}
EPOCHS = 100


def dense_program(batch_size: int = 2048, epochs: int = EPOCHS, **changes: Any
                  ) -> tuple[Net, Recipe]:
    """mnist.py as committed (or with `changes` to the recipe, for a candidate edit), with a
    snapshot after every epoch."""
    recipe = Recipe(batch_size=batch_size, epochs=epochs, optimizer="rmsprop", split="student",
                    snapshots=tuple(range(epochs + 1)))
    return Net(dense_net, hidden=(64,)), recipe.replace(**changes) if changes else recipe


def cnn_program(batch_size: int = 2048, epochs: int = EPOCHS, **changes: Any
                ) -> tuple[Net, Recipe]:
    """mnistcnn.py with its training call active, with a snapshot after every epoch."""
    recipe = Recipe(batch_size=batch_size, epochs=epochs, optimizer="adam", split="student",
                    flatten=False, snapshots=tuple(range(epochs + 1)))
    return Net(student_cnn), recipe.replace(**changes) if changes else recipe


@dataclasses.dataclass(frozen=True)
class Edit:
    """A single edit the student may have made to mnist.py between the recorded runs and the
    commit: why it is plausible (a trace in the files), and how it changes the program (the
    network's and the recipe's arguments). `runs=False`: no new runs, the reason says why."""

    name: str
    why: str
    net: dict = dataclasses.field(default_factory=dict)
    recipe: dict = dataclasses.field(default_factory=dict)
    runs: bool = True


# Written before any of them was run (commit history), most plausible first.
DENSE_EDITS: tuple[Edit, ...] = (
    Edit("as committed", "the file as it is"),
    Edit("fit() not run", "mnistcnn.py was committed with its fit() call commented out; the "
         "untrained network is every run's snapshot at epoch 0", runs=False),
    Edit("another epoch count", "epochs = 100 is a round value set last; Keras's mnist_mlp "
         "example, which the file follows, trains 20; every run's per-epoch snapshots give every "
         "count up to 100", runs=False),
    Edit("no validation data", "a second fit() line without validation_data is commented out "
         "beside the active one; validation is scored after each epoch and touches neither the "
         "weights nor the random state, so it cannot move the numbers (checked, paired by seed, "
         "with the standalone runner)", runs=False),
    Edit("Dense(256) active", "a Dense(256, ReLU) line above Dense(64) is commented out",
         net={"hidden": (256, 64)}),
    Edit("Dropout(0.2) after the hidden layer", "Dropout is imported and unused; Keras's "
         "mnist_mlp example, whose RMSprop, batch 128, /255 and to_categorical the file follows, "
         "puts Dropout(0.2) after each hidden layer", net={"dropout": 0.2}),
    Edit("no pixel scaling", "the three /= 255 lines are a block of their own that may have come "
         "after the batch-128 run", recipe={"scale": False}),
    Edit("training and validation pixels unscaled", "one forgotten line: the network trains on "
         "0-255 pixels and is tested on [0, 1] ones", recipe={"raw_pixels": ("train", "val")}),
    Edit("test pixels unscaled", "one forgotten line: the network trains on [0, 1] pixels and is "
         "tested on 0-255 ones", recipe={"raw_pixels": ("test",)}),
    Edit("optimizer 'adam'", "another optimizer string (RMSprop is imported as a class but the "
         "string is used, so the optimizer line was edited at least once)",
         recipe={"optimizer": "adam"}),
    Edit("optimizer 'sgd'", "another optimizer string, Keras's plain SGD (learning rate 0.01)",
         recipe={"optimizer": "sgd", "learning_rate": 0.01}),
)


def dense_edit(name: str, batch_size: int, epochs: int = EPOCHS) -> tuple[Net, Recipe]:
    """mnist.py with the named edit (DENSE_EDITS), at a batch size."""
    edit = {e.name: e for e in DENSE_EDITS}[name]
    if not edit.runs:
        raise ValueError(f"the edit {name!r} needs no runs of its own: {edit.why}")
    net, recipe = dense_program(batch_size, epochs, **edit.recipe)
    return net.replace(**edit.net), recipe


def provenance_rows() -> list[dict[str, str]]:
    """The provenance table: file, commit (short), what it does."""
    return [{"file": name, "commit": info["commit"][:7], "what it does": info["what"]}
            for name, info in FILES.items()]
