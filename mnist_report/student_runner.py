"""The student's two programs (ts-39/MNIST: mnist.py and mnistcnn.py), rewritten as one standalone
runner that needs only Keras, NumPy and scikit-learn, so it runs both in the project's
environment and in the student's own (`make student-env`: TensorFlow 2.17.0, Keras 3.5.0, NumPy
1.26.4, scikit-learn 1.5.1). Run on the same seeds in both, its runs say whether the library
versions move the numbers (chapter 02 and 04 pair them by seed).

    python -m mnist_report.student_runner dense --batch 2048 --epochs 100 --seed 0 --out run.json

What it does, as the student's files describe it (their code is not copied here):

- data: MNIST's 60,000 training images split by train_test_split(test_size=0.2,
  random_state=42) into 48,000 to train on and 12,000 to validate on; pixels / 255; one-hot
  labels and categorical cross-entropy;
- `dense`: 784 -> Dense(64, ReLU) -> Dense(10, softmax), RMSprop at Keras's defaults;
- `cnn`: the network of `models.student_cnn`, Adam at Keras's defaults, 28x28x1 images;
- `model.fit(batch_size, epochs, validation_data=the 12,000)`, with the test set scored after
  every epoch (a callback that does not change training), so one run gives every shorter one.

MNIST comes from data/mnist.npz (`make data` writes and verifies it). The output is one JSON
object: the program, the batch, the seed, the package versions, and per epoch the validation and
test loss and accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")


def load(path: Path) -> tuple:
    with np.load(path) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def build(program: str):
    import keras
    from keras import layers as kl

    if program == "dense":
        return keras.Sequential([keras.Input((784,)), kl.Dense(64, activation="relu"),
                                 kl.Dense(10, activation="softmax")]), "rmsprop"
    if program == "cnn":
        return keras.Sequential([
            keras.Input((28, 28, 1)), kl.Conv2D(16, 3, padding="same", activation="relu"),
            kl.MaxPooling2D(), kl.Conv2D(128, 3, activation="relu"), kl.MaxPooling2D(),
            kl.Conv2D(256, 3, activation="relu"), kl.MaxPooling2D(), kl.Dropout(0.5),
            kl.Flatten(), kl.Dense(128, activation="relu"), kl.Dropout(0.25),
            kl.Dense(10, activation="softmax")]), "adam"
    raise ValueError(f"program must be 'dense' or 'cnn', not {program!r}")


def run(program: str, batch: int, epochs: int, seed: int, data: Path,
        n_train: int | None = None, validation: bool = True) -> dict:
    import keras
    import tensorflow as tf
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    (x, y), (x_test, y_test) = load(data)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=42)
    if n_train:  # for a quick check only
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    shape = (-1, 784) if program == "dense" else (-1, 28, 28, 1)
    x_train, x_val, x_test = (a.reshape(shape).astype("float32") / 255
                              for a in (x_train, x_val, x_test))
    y_train, y_val, y_test = (keras.utils.to_categorical(a, 10) for a in (y_train, y_val, y_test))
    model, optimizer = build(program)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    epochs_out: list[dict] = []

    class ScoreTest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            test_loss, test_acc = self.model.evaluate(x_test, y_test, verbose=0)
            epochs_out.append({"epoch": epoch + 1, "loss": float(logs["loss"]),
                               "accuracy": float(logs["accuracy"]),
                               "val_loss": float(logs.get("val_loss", "nan")),
                               "val_accuracy": float(logs.get("val_accuracy", "nan")),
                               "test_loss": float(test_loss), "test_accuracy": float(test_acc)})

    # validation=False: the fit() line the student left commented out, without validation data
    model.fit(x_train, y_train, batch_size=batch, epochs=epochs, verbose=0,
              validation_data=(x_val, y_val) if validation else None, callbacks=[ScoreTest()])
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"program": program, "batch_size": batch, "epochs": epochs, "seed": seed,
            "n_train": len(y_train), "validation": validation, "packages": versions,
            "per_epoch": epochs_out}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program", choices=("dense", "cnn"))
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "mnist.npz")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--no-validation", dest="validation", action="store_false",
                        help="fit() without validation data")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    record = run(args.program, args.batch, args.epochs, args.seed, args.data, args.n_train,
                 args.validation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
