"""digits (scikit-learn, bundled) and the MNIST IDX reader (on files written here)."""

from __future__ import annotations

import gzip
import struct
import sys

import numpy
import pytest

from gpunet.data import digits, load_dataset, mnist


def test_digits_split_shapes_and_scaling():
    split = load_dataset("digits", seed=0)
    (x_train, y_train), (x_test, y_test) = split.train.arrays, split.test.arrays
    assert x_train.shape[1:] == (1, 8, 8) and x_train.dtype == numpy.float32
    assert y_train.dtype == numpy.int64 and len(x_train) + len(x_test) == 1797
    assert len(x_test) == pytest.approx(0.2 * 1797, abs=10)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # stratified: every class is in the test split in about its overall share
    counts = numpy.bincount(y_test, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    assert split.info["input_shape"] == (1, 8, 8) and split.info["num_classes"] == 10
    assert split.info["pixel_mean"] == pytest.approx(float(x_train.mean()))
    assert split.info["pixel_std"] == pytest.approx(float(x_train.std()))


def test_digits_split_is_seeded_and_disjoint():
    a, b, c = digits.load(seed=0), digits.load(seed=0), digits.load(seed=1)
    numpy.testing.assert_array_equal(a.test.arrays[0], b.test.arrays[0])
    assert not numpy.array_equal(a.test.arrays[1], c.test.arrays[1])
    train_rows = {r.tobytes() for r in a.train.arrays[0]}
    overlap = sum(r.tobytes() in train_rows for r in a.test.arrays[0])
    assert overlap <= 3  # a few digits are exact duplicates in the source data, no more


def test_digits_upsampled_canvas():
    small, big = digits.load(seed=0), digits.load(seed=0, size=32)
    assert big.train.arrays[0].shape[1:] == (1, 32, 32) and big.info["input_shape"] == (1, 32, 32)
    numpy.testing.assert_array_equal(big.train.arrays[0][:, :, ::4, ::4], small.train.arrays[0])
    with pytest.raises(ValueError, match="multiple of 8"):
        digits.load(size=12)


def test_digits_without_sklearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"gpunet\[data\]"):
        digits.load()


def write_idx(path, array, magic, gz=False, header_only=False):
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    if not header_only:
        data += array.astype(numpy.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_mnist(folder, n_train=5, n_test=3, gz=False, dotted=False):
    rng = numpy.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = rng.integers(0, 10, n)
        sep, ext = ("." if dotted else "-"), (".gz" if gz else "")
        write_idx(folder / f"{split}-images{sep}idx3-ubyte{ext}", images, 2051, gz)
        write_idx(folder / f"{split}-labels{sep}idx1-ubyte{ext}", labels, 2049, gz)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (False, True)])
def test_mnist_reads_idx_files(tmp_path, gz, dotted):
    arrays = make_mnist(tmp_path, gz=gz, dotted=dotted)
    split = load_dataset("mnist", data_dir=str(tmp_path))
    x, y = split.train.arrays
    assert x.shape == (5, 1, 28, 28) and x.dtype == numpy.float32 and y.dtype == numpy.int64
    numpy.testing.assert_allclose(x[:, 0] * 255, arrays["train"][0], atol=1e-4)
    numpy.testing.assert_array_equal(y, arrays["train"][1])
    numpy.testing.assert_array_equal(split.test.arrays[1], arrays["t10k"][1])
    assert split.info["input_shape"] == (1, 28, 28) and split.info["num_classes"] == 10


def test_mnist_needs_a_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass data_dir"):
        mnist.load()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist.load(data_dir=tmp_path)


def test_mnist_wrong_magic(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", numpy.zeros(5), 2051)
    with pytest.raises(mnist.IDXError, match="magic number 2051, expected 2049"):
        mnist.load(data_dir=tmp_path)


def test_mnist_truncated_file(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", numpy.zeros((3, 28, 28)), 2051, header_only=True)
    with pytest.raises(mnist.IDXError, match="has 16 bytes, expected 2368"):
        mnist.load(data_dir=tmp_path)


def test_mnist_count_mismatch_and_bad_labels(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", numpy.zeros(4), 2049)
    with pytest.raises(mnist.IDXError, match="5 images but 4 labels"):
        mnist.load(data_dir=tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", numpy.full(5, 12), 2049)
    with pytest.raises(mnist.IDXError, match="labels must lie in 0..9"):
        mnist.load(data_dir=tmp_path)
