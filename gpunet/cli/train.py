"""``gpunet train MODEL``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gpunet.cli.options import apply_backend, backend_options
from gpunet.cli.progress import EpochProgress


def prepare_run(model: str, dataset: str | None, seed: int, data_dir: str | None) -> tuple[Any, Any, Any]:
    """Recipe (adapted to the dataset), split and a freshly initialised model.

    A model that cannot take the dataset (wrong input shape or input count) is a usage error
    naming both, found by one forward pass on two test samples (the RNG state is preserved).
    """
    import gpunet
    from gpunet.data import load_dataset
    from gpunet.recipes import get_recipe

    recipe = get_recipe(model)
    name = dataset or recipe.dataset
    options = {"data_dir": data_dir} if data_dir else {}
    try:
        split = load_dataset(name, seed=seed, **options)
    except TypeError as exc:
        if "data_dir" not in str(exc):
            raise
        raise click.BadParameter(f"dataset {name!r} reads no files", param_hint="--data-dir") from exc
    if recipe.loss in ("bce", "perceptron") and not split.info.get("binary"):
        if recipe.loss == "perceptron":
            raise click.BadParameter(f"the perceptron is a binary classifier; dataset {name!r} has "
                                     f"{split.info.get('num_classes')} classes", param_hint="--dataset")
        recipe = dataclasses.replace(recipe, loss="cross_entropy")
    gpunet.manual_seed(seed)
    try:
        net = recipe.build(split.info)
        _dry_run(recipe, net, split)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        shape = split.info.get("input_shape")
        raise click.BadParameter(f"model {model!r} does not fit dataset {name!r} (input shape {shape}): {exc}",
                                 param_hint="--dataset") from exc
    return recipe, split, net


def _dry_run(recipe: Any, net: Any, split: Any) -> None:
    """One forward pass on two test samples, without touching the RNG or the graph."""
    import gpunet
    from gpunet import random as gpunet_random

    state = gpunet_random.get_state()
    *inputs, _ = split.test[:2]
    net.eval()
    try:
        with gpunet.no_grad():
            recipe.forward(net, *(gpunet.tensor(a) for a in inputs))
    finally:
        net.train()
        gpunet_random.set_state(state)


def load_trained(checkpoint: str, data_dir: str | None, command: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Rebuild a checkpoint's recipe, split and model, with the trained weights loaded."""
    from gpunet import io
    from gpunet.train import TrainingError

    state = io.load(checkpoint)
    if state.get("kind") != "training" or "recipe" not in state:
        raise TrainingError(f"{command}: {checkpoint} is not a training checkpoint of gpunet")
    seed = int(state.get("settings", {}).get("seed", 0))
    recipe, split, model = prepare_run(state["recipe"], state.get("dataset"), seed, data_dir)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, ValueError) as exc:
        raise TrainingError(f"{command}: {checkpoint} does not fit model {state['recipe']!r}: {exc}") from exc
    return recipe, split, model, state


@click.command()
@click.argument("model")
@click.option("--dataset", default=None, help="Dataset name [default: the model's own].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with files a dataset reads (e.g. MNIST IDX files).")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=None,
              help="L2 penalty [default: the recipe's].")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default=None,
              help="Learning-rate schedule over the epochs [default: the recipe's].")
@click.option("--clip", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Clip the global gradient norm to this value.")
@click.option("--seed", type=int, default=0, show_default=True)
@backend_options
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Save a checkpoint here (atomically) every epoch, every --checkpoint-every steps and on Ctrl-C.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from --checkpoint if it exists.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write loss/accuracy curves (PNG).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the final metrics and history as JSON.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Limit NumPy's BLAS threads (needs threadpoolctl; 1 is fastest for small models on a busy CPU).")
@click.option("--quiet", is_flag=True, help="No progress output.")
def train(model: str, dataset: str | None, data_dir: str | None, epochs: int | None, batch_size: int | None,
          lr: float | None, optimizer: str | None, weight_decay: float | None, schedule: str | None,
          clip: float | None, seed: int, backend_name: str | None,
          kernels: str, checkpoint: str | None, checkpoint_every: int, resume: bool, plot: str | None,
          json_path: str | None, threads: int | None, quiet: bool) -> None:
    """Train MODEL (linear, perceptron, mlp, lenet, rnn, lstm, gru) and report test accuracy.

    \b
    Examples:
      gpunet train linear                     # the source text's credit example
      gpunet train lenet                      # LeNet-5 on 8x8 digits
      gpunet train lstm --dataset dna --epochs 8 --plot curves.png
      gpunet train mlp --checkpoint run.npz --resume
    """
    from gpunet import backend
    from gpunet.train import Settings, Trainer

    apply_backend(backend_name, kernels)
    if resume and not checkpoint:
        raise click.UsageError("--resume needs --checkpoint PATH")
    recipe, split, net = prepare_run(model, dataset, seed, data_dir)
    settings = Settings(epochs=epochs or recipe.epochs, batch_size=batch_size or recipe.batch_size,
                        lr=lr or recipe.lr, optimizer=optimizer or recipe.optimizer, seed=seed,
                        momentum=recipe.momentum, clip=clip or recipe.clip, schedule=schedule or recipe.schedule,
                        weight_decay=recipe.weight_decay if weight_decay is None else weight_decay)
    trainer = Trainer(recipe, net, split, settings, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                      progress=EpochProgress(quiet=quiet))
    if resume and Path(checkpoint).exists():
        trainer.restore(checkpoint)
        click.echo(f"resumed from {checkpoint} at epoch {trainer.epoch + 1}, batch {trainer.batch}", err=True)
    if not quiet:
        click.echo(f"training {model} on {split.info.get('name')} ({len(split.train)} train / "
                   f"{len(split.test)} test) with {backend.current()} ({backend.short_reason(backend.reason())}); "
                   f"{net.num_parameters():,} parameters, {net.num_layers} layers "
                   f"({'deep' if net.is_deep else 'shallow'})", err=True)
    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with blas_threads(threads):
            history = trainer.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    elapsed = time.perf_counter() - started
    last = history.last
    click.echo(f"{model}: test accuracy {last.get('test_accuracy', float('nan')):.4f}  "
               f"train accuracy {last.get('train_accuracy', float('nan')):.4f}  "
               f"({trainer.epoch} epochs, {elapsed:.1f}s)")
    if json_path:
        Path(json_path).write_text(json.dumps({"model": model, "dataset": split.info.get("name"),
                                               "settings": settings.as_dict(), "seconds": elapsed,
                                               "history": history.epochs}, indent=2))
    if plot:
        from gpunet.plotting import plot_history

        plot_history(history.epochs, plot, title=f"{model} on {split.info.get('name')}")
        click.echo(f"wrote {plot}")


@contextlib.contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Limit the BLAS thread pool for the duration (no-op when ``threads`` is None)."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise click.UsageError("--threads needs threadpoolctl: pip install threadpoolctl") from exc
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
