"""Helpers for the command-line tests: run ``gpunet ...`` in-process as the console script does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpunet.cli import cli
from gpunet.cli.errors import run_cleanly


@dataclass
class Outcome:
    """Exit code and captured output of one CLI run."""

    code: int
    stdout: str
    stderr: str

    def error_line(self) -> str:
        """The single ``gpunet: error: ...`` line of a failed run (asserts there is no traceback)."""
        assert self.code == 1, self
        assert "Traceback" not in self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("gpunet: error: "), lines
        return lines[0]


def gpunet_cli(*args: str) -> Outcome:
    """Run the CLI like the ``gpunet`` entry point (known errors become one line, exit 1/2)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        code = run_cleanly(cli, [str(a) for a in args])
    return Outcome(code, out.getvalue().decode(), err.getvalue().decode())


@pytest.fixture
def run_cli() -> Callable[..., Outcome]:
    """``run_cli("train", "mlp", ...)`` -> :class:`Outcome`."""
    return gpunet_cli


@pytest.fixture(scope="session")
def mlp_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of one epoch of ``gpunet train mlp`` (credit data, seconds)."""
    path = tmp_path_factory.mktemp("mlp") / "mlp.npz"
    outcome = gpunet_cli("train", "mlp", "--epochs", "1", "--backend", "numpy", "--quiet", "--checkpoint", path)
    assert outcome.code == 0, outcome
    return path


@pytest.fixture(scope="session")
def lenet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training checkpoint of ``lenet`` as ``gpunet train lenet`` writes it, before any step
    (training an epoch would only slow the tests; the filters do not need to be good)."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    from gpunet import io
    from gpunet.training import Settings, prepare_run, recipe_trainer

    recipe, split, model = prepare_run("lenet", None, 0, None)
    settings = Settings(epochs=1, batch_size=32, lr=recipe.lr, optimizer=recipe.optimizer)
    path = tmp_path_factory.mktemp("lenet") / "lenet.npz"
    io.save(recipe_trainer(recipe, model, split, settings).state(), path)
    return path
