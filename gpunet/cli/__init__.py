"""The ``gpunet`` command line (click): train, evaluate, summary, filters, info, bench.

The commands parse options, call the library (mostly :mod:`gpunet.training`) and print.
"""

from __future__ import annotations

import sys

import click

from gpunet.cli.errors import run_cleanly


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpunet", prog_name="gpunet")
def cli() -> None:
    """Train neural networks on an NVIDIA GPU (CuPy) or a CPU (NumPy) from one codebase.

    \b
    Examples:
      gpunet info
      gpunet train lenet
      gpunet train lstm --dataset dna --epochs 5
      gpunet summary lenet
      gpunet bench lenet rnn --peers
    """


def _register() -> None:
    import importlib
    import importlib.util

    for module_name, command_name in (("train", "train"), ("evaluate", "evaluate"), ("summary", "summary"),
                                      ("info", "info"), ("bench", "bench"), ("visualize", "filters")):
        full = f"gpunet.cli.{module_name}"
        if importlib.util.find_spec(full) is None:
            continue
        cli.add_command(getattr(importlib.import_module(full), command_name))


_register()


def main() -> None:
    """Console-script entry point: errors become one clear line and exit code 1/2."""
    sys.exit(run_cleanly(cli))
