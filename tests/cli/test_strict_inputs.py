"""Strict inputs on the command line: damaged data files, empty splits, non-finite options, bad
environment variables and NaN stops are one clear line naming the cause, never a traceback."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

import gpunet
from gpunet.data import ArrayDataset, Split, load_dataset, mnist
from gpunet.training import Settings, Trainer, TrainingError, get_recipe, recipe_trainer


def write_idx(path: Path, array: numpy.ndarray, magic: int, gz: bool = False) -> None:
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    data += array.astype(numpy.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_mnist(folder: Path, n_train: int = 5, gz: bool = True) -> None:
    rng = numpy.random.default_rng(0)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", 3)):
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)), 2051, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", rng.integers(0, 10, n), 2049, gz)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy", **env}
    full.pop("GPUNET_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gpunet.cli", *args], capture_output=True, text=True, env=full,
                          timeout=300)


def one_line(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and lines, done.stderr
    text = done.stderr if code == 2 else lines[-1]  # usage errors: click's usage lines, then the error
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("gpunet: error: "), done.stderr
    for fragment in fragments:
        assert fragment in text, done.stderr


# ----- data files -------------------------------------------------------------------------
def test_gz_that_is_not_gzip(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"this is not gzip at all")
    with pytest.raises(mnist.IDXError, match=f"{bad} is not a valid gzip file"):
        load_dataset("mnist", data_dir=str(tmp_path))
    one_line(cli("train", "lenet", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"), 1,
             f"mnist: {bad} is not a valid gzip file")


def test_truncated_gz_is_an_error_not_an_abort(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(mnist.IDXError, match=f"{path} is a truncated gzip file"):
        load_dataset("mnist", data_dir=str(tmp_path))
    done = cli("train", "lenet", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet")
    one_line(done, 1, f"{path} is a truncated gzip file")
    assert "aborted" not in done.stderr


def test_gzip_that_decompresses_beyond_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    header = struct.pack(">II", 2049, 5)
    path.write_bytes(gzip.compress(header + bytes(5) + bytes(50 * 2**20)))  # 50 MB of zeros after the labels
    with pytest.raises(mnist.IDXError, match="decompresses to more than 13 bytes, beyond what its header announces"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)
    monkeypatch.setattr(mnist, "MAX_GZIP_RATIO", 2)
    path.write_bytes(gzip.compress(struct.pack(">II", 2049, 10**8) + bytes(10**6)))
    with pytest.raises(mnist.IDXError, match="or a ratio of 2:1"):
        mnist.read_idx(path, mnist.LABELS_MAGIC)


def test_idx_header_whose_size_overflows(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 2051, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))
    with pytest.raises(mnist.IDXError, match=r"has 116 bytes, expected \d{25,} for shape"):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


def test_empty_split_is_refused(tmp_path: Path) -> None:
    make_mnist(tmp_path, n_train=0, gz=False)
    with pytest.raises(mnist.IDXError, match="the train split in .* has no images"):
        load_dataset("mnist", data_dir=str(tmp_path))
    one_line(cli("train", "lenet", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"), 1,
             "has no images")


# ----- options and environment -------------------------------------------------------------
@pytest.mark.parametrize("option", ["--clip", "--weight-decay", "--lr"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_options_are_refused(option: str, value: str) -> None:
    done = cli("train", "mlp", option, value, "--epochs", "1", "--quiet")
    one_line(done, 2, option)
    assert "not a finite number" in done.stderr or "not in the range" in done.stderr, done.stderr


@pytest.mark.parametrize("variable", ["GPUNET_KERNELS", "GPUNET_BACKEND"])
def test_invalid_environment_variables_are_errors_naming_them(variable: str) -> None:
    for args in (["train", "mlp", "--epochs", "1", "--quiet"], ["train", "mlp", "--epochs", "1", "--quiet",
                                                                 "--backend", "numpy", "--kernels", "auto"]):
        one_line(cli(*args, **{variable: "bogus"}), 1, f"{variable}='bogus' is not one of")


def test_invalid_kernels_variable_warns_the_library_user() -> None:
    code = "import gpunet; print(gpunet.backend.current(), gpunet.config.kernels())"
    done = subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, env={**os.environ, "GPUNET_KERNELS": "bogus"}, timeout=120)
    assert done.returncode == 0 and done.stdout.split()[-1] == "auto"
    assert "GPUNET_KERNELS='bogus' is not one of auto, raw, numba, cupy" in done.stderr


def test_invalid_backend_variable_is_a_backend_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUNET_BACKEND", "bogus")
    with pytest.raises(gpunet.BackendError, match="GPUNET_BACKEND='bogus' is not one of auto, numpy, cupy"):
        gpunet.backend.env_backend()


def test_valid_environment_variables_are_used() -> None:
    done = cli("train", "perceptron", "--epochs", "1", "--quiet", GPUNET_KERNELS="CuPy", GPUNET_BACKEND=" NumPy ")
    assert done.returncode == 0, done.stderr


# ----- NaN stops name their cause ------------------------------------------------------------
def credit_trainer(poison: bool, lr: float, model: str = "mlp", batch_size: int = 0) -> Trainer:
    recipe = get_recipe(model)
    split = load_dataset(recipe.dataset, seed=0)
    x, y = (a.copy() for a in split.train.arrays)
    if poison:
        x[5, 1] = numpy.nan
    split = Split(ArrayDataset(x, y), split.test, split.info)
    gpunet.manual_seed(0)
    settings = Settings(epochs=1, batch_size=batch_size or len(x), lr=lr, optimizer="sgd", momentum=0.0)
    return recipe_trainer(recipe, recipe.build(split.info), split, settings)


def test_nan_in_the_data_is_named_as_the_cause() -> None:
    with pytest.raises(TrainingError, match=r"loss is nan at step 1 .*; the data is the cause: the input of this "
                                            r"batch holds 1 NaN/inf value\(s\); clean the dataset"):
        credit_trainer(poison=True, lr=0.01).fit()


def test_divergence_is_named_as_the_cause() -> None:
    with pytest.raises(TrainingError, match=r"(loss is|gradient of .* has) (nan|inf|NaN/inf) at step \d+ .*; "
                                            r"lower --lr or use --clip \(the batch is finite"):
        credit_trainer(poison=False, lr=1e38, model="perceptron", batch_size=1).fit()
