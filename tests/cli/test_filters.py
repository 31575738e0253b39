"""``gpunet filters`` and :mod:`gpunet.visualize`."""

from __future__ import annotations

import sys

import numpy
import pytest

import gpunet
from gpunet.models.cnn import LeNet
from gpunet.nn.containers import MLP
from gpunet.visualize import first_layer, save_filters

PNG = b"\x89PNG\r\n\x1a\n"


def test_first_layer_is_the_convolution_of_the_image() -> None:
    model = LeNet(num_classes=10, in_channels=1, input_size=8)
    image = numpy.random.default_rng(0).random((1, 8, 8), dtype=numpy.float32)
    filters, maps = first_layer(model, image)
    assert filters.shape == (6, 1, 5, 5) and maps.shape == (6, 8, 8)  # 8x8 input: "same" padding 2
    padded = numpy.pad(image[0], 2)
    expected = sum(filters[3, 0, p, q] * padded[p:p + 8, q:q + 8] for p in range(5) for q in range(5))
    numpy.testing.assert_allclose(maps[3], expected + model.conv1.bias.numpy()[3], rtol=1e-5, atol=1e-5)


def test_save_filters_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    model = LeNet(num_classes=10, in_channels=1, input_size=32)
    path = save_filters(model, numpy.zeros((1, 32, 32), numpy.float32), tmp_path / "f.png", "title")
    assert path.read_bytes().startswith(PNG)


def test_a_model_without_convolution_is_refused() -> None:
    with pytest.raises(ValueError, match="no Conv2d layer"):
        first_layer(MLP([4, 3, 2]), numpy.zeros((1, 2, 2), numpy.float32))


def test_filters_command_writes_png(run_cli, lenet_checkpoint, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "lenet-filters.png"
    outcome = run_cli("filters", lenet_checkpoint, "--out", out, "--sample", "3")
    assert outcome.code == 0, outcome
    assert f"wrote {out}" in outcome.stdout
    assert out.read_bytes().startswith(PNG)


def test_filters_default_output_sits_beside_the_checkpoint(run_cli, lenet_checkpoint) -> None:
    pytest.importorskip("matplotlib")
    outcome = run_cli("filters", lenet_checkpoint)
    assert outcome.code == 0, outcome
    assert lenet_checkpoint.with_name("lenet-filters.png").read_bytes().startswith(PNG)


def test_filters_sample_past_the_test_split_is_a_usage_error(run_cli, lenet_checkpoint) -> None:
    outcome = run_cli("filters", lenet_checkpoint, "--sample", "100000")
    assert outcome.code == 2 and "past the test split" in outcome.stderr


def test_filters_of_a_dense_model_is_one_line(run_cli, mlp_checkpoint, tmp_path) -> None:
    line = run_cli("filters", mlp_checkpoint, "--out", tmp_path / "x.png").error_line()
    assert "no Conv2d layer" in line


def test_filters_missing_checkpoint_is_a_usage_error(run_cli, tmp_path) -> None:
    outcome = run_cli("filters", tmp_path / "missing.npz")
    assert outcome.code == 2 and "does not exist" in outcome.stderr


# a `gpunet` process without matplotlib: find_spec finds no such package (as where it is not installed);
# at exit it says whether the training code or the checkpoint reader was imported
NO_MATPLOTLIB = ("import atexit, importlib.util, sys\n"
                 "real = importlib.util.find_spec\n"
                 "importlib.util.find_spec = lambda n, *a: None if n == 'matplotlib' else real(n, *a)\n"
                 "atexit.register(lambda: print('loaded:', sorted(m for m in ('gpunet.training', 'matplotlib')"
                 " if m in sys.modules)))\n"
                 "from gpunet.cli import main\nsys.argv = ['gpunet'] + sys.argv[1:]\nmain()\n")


@pytest.mark.parametrize("target", [["nope.npz"], ["nope.py:build", "--checkpoint", "nope.npz", "--data", "x.npz"]])
def test_filters_without_matplotlib_is_refused_before_anything_loads(tmp_path, target) -> None:
    """One line naming the command and how to install, exit 1; checked first: the missing checkpoint (and
    model file) are not even reported, and neither the training code nor matplotlib was imported."""
    import os
    import subprocess

    env = {**os.environ, "GPUNET_BACKEND": "numpy", "GPUNET_QUIET": "1"}
    done = subprocess.run([sys.executable, "-c", NO_MATPLOTLIB, "filters", *target, "--out", "f.png"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["gpunet: error: filters: needs the matplotlib package to draw the PNG: pip install matplotlib "
                     "(or pip install 'gpunet[plot]')"], lines
    assert done.stdout.strip() == "loaded: []"
    assert not (tmp_path / "f.png").exists()


def test_filters_leave_the_backend_usable() -> None:
    assert gpunet.current_backend() == "numpy"


def test_filter_figure_has_a_block_and_colour_bars_per_conv_layer() -> None:
    pytest.importorskip("matplotlib")
    from gpunet.plotting import _pyplot
    from gpunet.visualize import conv_layers, filter_figure

    model = LeNet(num_classes=10, in_channels=1, input_size=32)
    image = numpy.zeros((1, 32, 32), numpy.float32)
    layers = conv_layers(model, image)
    assert [name for name, _, _ in layers] == ["conv1", "conv2"]
    assert layers[1][1].shape[0] == 16
    fig = filter_figure(image, layers)
    bars = [ax.get_label() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2 * len(layers)  # one for the filters, one for the maps, per layer
    titled = {ax.get_title().split()[0] for ax in fig.axes if ax.get_title() and ax.get_title() != "input"}
    assert titled == {"conv1", "conv2"}
    _pyplot().close(fig)


def test_filters_unwritable_out_is_refused_before_loading(tmp_path) -> None:
    """Through the real command: --out under a file (not a folder) is a usage error, and the checkpoint is not
    even read (it is no checkpoint at all)."""
    import os
    import subprocess

    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    not_a_checkpoint = tmp_path / "junk.npz"
    not_a_checkpoint.write_bytes(b"junk")
    done = subprocess.run([sys.executable, "-m", "gpunet.cli", "filters", str(not_a_checkpoint), "--out",
                           str(blocker / "f.png")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GPUNET_QUIET": "1"})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpunet: error: filters: Invalid value for --out: "), lines
