"""``gpunet train MODEL``: a built-in recipe, or a user's ``FILE.py:FUNC`` on ``--data FILE.npz``."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gpunet.cli.errors import Interrupted, library_usage_errors
from gpunet.cli.options import (
    STDOUT,
    FiniteFloatRange,
    apply_backend,
    backend_options,
    check_module,
    check_output,
    write_text,
)
from gpunet.cli.progress import EpochProgress


@click.command()
@click.argument("model")
@click.option("--dataset", default=None, help="Dataset name [default: the model's own].")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="An .npz with arrays x, y (and optionally x_test, y_test) for a MODEL given as FILE.py:FUNC; "
                   "integer y: classification, floating y: regression.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with files a dataset reads (e.g. MNIST IDX files).")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=None)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None)
@click.option("--weight-decay", type=FiniteFloatRange(min=0), default=None,
              help="L2 penalty [default: the recipe's].")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default=None,
              help="Learning-rate schedule over the epochs [default: the recipe's].")
@click.option("--clip", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Clip the global gradient norm to this value.")
@click.option("--seed", type=int, default=0, show_default=True)
@backend_options
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Save a checkpoint here (atomically) every epoch, every --checkpoint-every steps and on Ctrl-C.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from --checkpoint if it exists.")
@click.option("--overwrite", is_flag=True, help="Start afresh even if --checkpoint exists (it is replaced).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write loss/accuracy curves (PNG).")
@click.option("--plot-log", is_flag=True, help="Draw the --plot loss axis on a log scale.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the final metrics and history as JSON (- for standard output).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for BLAS and the numba kernels together [default: the cores this process may use].")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--distributed", is_flag=True,
              help="Data-parallel over the processes of `mpiexec -n N` (needs the mpi extra); --batch-size stays "
                   "the global batch, rank 0 prints and writes the files.")
@library_usage_errors
def train(model: str, dataset: str | None, data: str | None, data_dir: str | None, epochs: int | None,
          batch_size: int | None, lr: float | None, optimizer: str | None, weight_decay: float | None,
          schedule: str | None, clip: float | None, seed: int, backend_name: str | None,
          kernels: str | None, checkpoint: str | None, checkpoint_every: int, resume: bool, overwrite: bool,
          plot: str | None, plot_log: bool, json_path: str | None, threads: int | None, quiet: bool,
          distributed: bool) -> None:
    """Train MODEL (linear, perceptron, mlp, lenet, rnn, lstm, gru) and report test accuracy.

    MODEL may also be FILE.py:FUNC, where FUNC() returns a gpunet Module, trained on --data FILE.npz.

    \b
    Examples:
      gpunet train linear                     # the source text's credit example
      gpunet train lenet                      # LeNet-5 on 8x8 digits
      gpunet train lstm --dataset dna --epochs 8 --plot curves.png
      gpunet train mlp --plot curves.png --plot-log
      gpunet train mlp --checkpoint run.npz --resume
      gpunet train mlp --dataset digits --json - --quiet
      mpiexec -n 2 gpunet train lenet --distributed
      gpunet train my_model.py:build --data my_data.npz --epochs 20
    """
    if distributed:
        import os

        from gpunet import distributed as dist

        dist.init(device=False)
        if dist.get_rank() != 0:
            os.environ["GPUNET_QUIET"] = "1"  # one backend notice per job, from rank 0
    from gpunet.training.runs import check_model

    check_model(model, dataset, data, data_dir)
    if plot_log and not plot:
        raise click.BadParameter("needs --plot PATH", param_hint="--plot-log")
    _check_run_options(checkpoint, resume, overwrite, plot, json_path)
    apply_backend(backend_name, kernels, quiet=quiet)
    compile_since = None if distributed else _say_if_compiling(quiet)
    options = dict(compile_since=compile_since, model=model, dataset=dataset, data=data, data_dir=data_dir,
                   epochs=epochs, batch_size=batch_size,
                   lr=lr, optimizer=optimizer, weight_decay=weight_decay, schedule=schedule, clip=clip, seed=seed,
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, plot=plot,
                   plot_log=plot_log, json_path=json_path, threads=threads, quiet=quiet)
    if not distributed:
        _train(**options, distributed=False)
        return
    from gpunet.cli.errors import _message

    dist.select_device()
    with dist.abort_on_error(describe=_message):
        _train(**options, distributed=True)


def _say_if_compiling(quiet: bool) -> float | None:
    """On NumPy with a cold numba cache (a fresh install), say that the kernels compile first and
    return when (the run then compiles them all before its first epoch); else None."""
    import os

    from gpunet import backend

    if quiet or os.environ.get("GPUNET_QUIET") or backend.current() != "numpy":
        return None
    from gpunet.ops import kernel_cache

    if not kernel_cache.cold():
        return None
    click.echo(kernel_cache.NOTICE, err=True)
    return time.perf_counter()


@contextlib.contextmanager
def _agreed_stop(trainer: Any, distributed: bool) -> Iterator[None]:
    """Distributed: Ctrl-C stops every rank after the same step (checked after each one), so
    rank 0 can save the checkpoint they share."""
    if not distributed:
        yield
        return
    from gpunet import distributed as dist

    with dist.agreed_interrupts() as agreement:
        trainer.progress = agreement.polling(trainer.progress)
        yield


def _kept(trainer: object, checkpoint: str | None, main: bool) -> str:
    """What survives a Ctrl-C: where the checkpoint is and how to continue, or that nothing was saved."""
    where = f"epoch {getattr(trainer, 'epoch', 0) + 1}, batch {getattr(trainer, 'batch', 0)}"
    if not checkpoint:
        return f"at {where}; nothing saved (give --checkpoint PATH to keep a run)"
    if not main or not Path(checkpoint).exists():
        return f"at {where}; no checkpoint written yet"
    return f"at {where}; checkpoint saved to {checkpoint} (continue with --checkpoint {checkpoint} --resume)"


def _check_run_options(checkpoint: str | None, resume: bool, overwrite: bool, plot: str | None,
                       json_path: str | None) -> None:
    """Refuse, before any data is loaded, options that would fail or lose a run at its end."""
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if (resume or overwrite) and not checkpoint:
        raise click.UsageError(f"{'--resume' if resume else '--overwrite'} needs --checkpoint PATH")
    if checkpoint and Path(checkpoint).exists() and not (resume or overwrite):
        raise click.BadParameter(f"{checkpoint!r} exists; give --resume to continue it or --overwrite to "
                                 "replace it", param_hint="--checkpoint")
    check_output(checkpoint, "--checkpoint")
    check_output(json_path, "--json", allow_stdout=True)
    check_output(plot, "--plot")
    if plot:
        check_module("matplotlib", "--plot", "plot")


def _train(model: str, dataset: str | None, data: str | None, data_dir: str | None, epochs: int | None,
           batch_size: int | None, lr: float | None, optimizer: str | None, weight_decay: float | None,
           schedule: str | None, clip: float | None, seed: int, checkpoint: str | None, checkpoint_every: int,
           resume: bool, plot: str | None, plot_log: bool, json_path: str | None, threads: int | None, quiet: bool,
           distributed: bool, compile_since: float | None = None) -> None:
    from gpunet import backend
    from gpunet.training import (
        blas_threads,
        check_resume_model,
        compile_kernels,
        make_settings,
        prepare_run,
        prepare_user_run,
        recipe_trainer,
        reported_history,
        sigterm_as_interrupt,
    )

    rank, world = 0, 1
    if distributed:
        from gpunet import distributed as dist

        rank, world = dist.get_rank(), dist.get_world_size()
    main = rank == 0
    if data is None:
        recipe, split, net = prepare_run(model, dataset, seed, data_dir)
    else:
        recipe, split, net = prepare_user_run(model, data, seed)
        if resume and Path(checkpoint).exists():
            check_resume_model(recipe, split.info, checkpoint)
    classify = recipe.task == "classification"
    for part, data in (("train", split.train), ("test", split.test)):
        if len(data) == 0:
            raise ValueError(f"dataset {split.info.get('name')!r} has an empty {part} split: nothing to "
                                   f"{'train on' if part == 'train' else 'evaluate on'}")
    settings = make_settings(recipe, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                             weight_decay=weight_decay, schedule=schedule, clip=clip)
    progress = EpochProgress(quiet=quiet or not main, accuracy=classify)
    trainer = recipe_trainer(recipe, net, split, settings, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                             progress=progress, distributed=distributed)
    if resume and Path(checkpoint).exists():
        trainer.restore(checkpoint)
        if main:
            click.echo(f"resumed from {checkpoint} at epoch {trainer.epoch + 1}, batch {trainer.batch}", err=True)
    if distributed and main and not quiet:
        click.echo(f"data parallel over {world} processes: global batch {settings.batch_size} "
                   f"(about {settings.batch_size / world:g} per rank), gradient all-reduce "
                   f"{trainer.ddp.reducer.name}, {len(trainer.ddp.buckets)} bucket(s)", err=True)
    if main and not quiet:
        click.echo(f"training {model} on {split.info.get('name')} ({len(split.train)} train / "
                   f"{len(split.test)} test) with {backend.current()} ({backend.short_reason(backend.reason())}); "
                   f"{net.num_parameters():,} parameters, {net.num_layers} layers "
                   f"({'deep' if net.is_deep else 'shallow'})", err=True)
    if compile_since is not None:  # the forward's kernels compiled in prepare_run's dry run
        with sigterm_as_interrupt(), blas_threads(threads):
            compile_kernels(trainer, split, settings.batch_size)
        click.echo(f"gpunet: compiled the CPU kernels in {time.perf_counter() - compile_since:.1f} s, before the "
                   f"first epoch; numba keeps them on disk for later runs", err=True)
    started = time.perf_counter()
    try:
        with sigterm_as_interrupt(), blas_threads(threads), _agreed_stop(trainer, distributed):
            history = trainer.fit()
    except KeyboardInterrupt as exc:
        if not main and getattr(exc, "all_ranks", False):
            raise SystemExit(130) from exc  # rank 0 says what was kept
        raise Interrupted(_kept(trainer, checkpoint, main)) from exc
    elapsed = time.perf_counter() - started
    if not main:
        return
    last = history.last
    epochs_done = reported_history(recipe, history.epochs)
    to_stdout = json_path == STDOUT  # then standard output carries only the JSON
    if classify:
        result = (f"test accuracy {last.get('test_accuracy', float('nan')):.4f}  "
                  f"train accuracy {last.get('train_accuracy', float('nan')):.4f}")
    else:
        result = (f"test loss (MSE) {last.get('test_loss', float('nan')):.4g}  "
                  f"train loss {last.get('train_loss', float('nan')):.4g}")
    click.echo(f"{model}: {result}  ({trainer.epoch} epochs, {elapsed:.1f}s)", err=to_stdout)
    if json_path:
        write_text(json_path, json.dumps({"model": model, "dataset": split.info.get("name"),
                                               "settings": settings.as_dict(), "seconds": elapsed,
                                               "world_size": world, "task": recipe.task,
                                               "history": epochs_done}, indent=2))
    if plot:
        from gpunet.plotting import plot_history

        plot_history(epochs_done, plot, title=f"{model} on {split.info.get('name')}", log_loss=plot_log)
        click.echo(f"wrote {plot}", err=to_stdout)
