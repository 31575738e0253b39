"""A user's model (``FILE.py:FUNC``) for ``summary``, ``evaluate`` and ``filters``, as ``train`` takes it.

The refusals (a missing file or function, a missing ``--checkpoint`` or ``--data``, options of the
other form) come before anything is loaded; :func:`load_user_trained` then rebuilds the model with
:mod:`gpunet.training.user_model` (the loader ``train`` uses) and refuses a checkpoint of another model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

TARGET_METAVAR = "CHECKPOINT|FILE.py:FUNC"


@dataclass(frozen=True)
class Target:
    """What a command works on: a built-in model's checkpoint, or a model file with its checkpoint and data."""

    checkpoint: str
    model: str | None = None
    data: str | None = None


def existing_file(path: str, param_hint: str) -> None:
    """Refuse (exit 2) a ``path`` that does not exist or is a folder."""
    if Path(path).is_dir():
        raise click.BadParameter(f"{path!r} is a folder; expected a checkpoint file", param_hint=param_hint)
    if not Path(path).exists():
        raise click.BadParameter(f"file {path!r} does not exist", param_hint=param_hint)


def resolve_target(target: str, checkpoint: str | None, data: str | None, data_dir: str | None) -> Target:
    """Check the argument and its options (nothing is loaded): ``CHECKPOINT`` alone, or
    ``FILE.py:FUNC --checkpoint CKPT --data FILE.npz``."""
    from gpunet.training.user_model import is_model_file, parse_model

    if not is_model_file(target):
        for option, value in (("--checkpoint", checkpoint), ("--data", data)):
            if value is not None:
                raise click.BadParameter(f"is for a model from a file (FILE.py:FUNC); {target!r} is a checkpoint "
                                         "of a built-in model, which brings its own dataset", param_hint=option)
        existing_file(target, "'CHECKPOINT'")
        return Target(checkpoint=target)
    parse_model(target)  # the library's UsageError: one line, exit 2 (library_usage_errors)
    if data_dir is not None:
        raise click.BadParameter(f"a model from a file uses --data FILE.npz, not --data-dir {data_dir!r}",
                                 param_hint="--data-dir")
    for option, value in (("--checkpoint", checkpoint), ("--data", data)):
        if value is None:
            what = "CKPT (what `gpunet train ... --checkpoint CKPT` wrote)" if option == "--checkpoint" else \
                "FILE.npz (the arrays it was trained on)"
            raise click.BadParameter(f"model {target!r} from a file needs {option} {what}", param_hint=option)
    existing_file(checkpoint, "--checkpoint")
    if not Path(data).is_file():
        raise click.BadParameter(f"data file {data!r} does not exist", param_hint="--data")
    return Target(checkpoint=checkpoint, model=target, data=data)


def load_user_trained(target: Target, command: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(recipe, split, model with the trained weights, checkpoint state) of ``FILE.py:FUNC``.

    The split is the one ``train`` used (the checkpoint's seed); a checkpoint of a built-in model,
    of another function or of a model with other parameter shapes is refused on one line."""
    from gpunet import io
    from gpunet.training import check_resume_model, prepare_user_run
    from gpunet.training.checkpoint import check_header, check_weights
    from gpunet.training.user_model import is_model_file

    state = io.load(target.checkpoint)
    check_header(state, target.checkpoint, command, complete=False)
    if not is_model_file(state["recipe"]):
        raise click.BadParameter(f"{target.checkpoint} is a checkpoint of the built-in model {state['recipe']!r}, "
                                 f"not of {target.model!r}; run `gpunet {command} {target.checkpoint}`",
                                 param_hint="--checkpoint")
    seed = state.get("settings", {}).get("seed", 0)
    recipe, split, model = prepare_user_run(target.model, target.data, seed)
    # the model's identity (function, task, input and parameter shapes); other data of that shape may be used
    check_resume_model(recipe, {**split.info, "name": state.get("dataset")}, target.checkpoint)
    check_weights(state, model, target.checkpoint, command)
    model.load_state_dict(state["model"])
    return recipe, split, model, state


def user_summary_inputs(model: str, dataset: str | None, data: str | None,
                        input_shape: tuple[int, ...] | None) -> tuple[str, Any, list[Any]]:
    """(title, model, two input samples) for ``gpunet summary FILE.py:FUNC`` with ``--data`` or ``--input-shape``."""
    import numpy

    import gpunet
    from gpunet.training import prepare_user_run
    from gpunet.training.errors import UsageError
    from gpunet.training.user_model import _probe, build_model, load_function, parse_model

    path, func = parse_model(model)
    if dataset is not None:
        raise click.BadParameter(f"a model from a file takes --data FILE.npz or --input-shape, not --dataset "
                                 f"{dataset!r}", param_hint="--dataset")
    if (data is None) == (input_shape is None):
        raise click.UsageError(f"model {model!r} from a file needs exactly one of --data FILE.npz and "
                               f"--input-shape D1,D2,... (what one sample looks like), got "
                               f"{'both' if data else 'neither'}")
    gpunet.use("numpy")
    if data is not None:
        recipe, split, net = prepare_user_run(model, data, 0)
        *inputs, _ = split.test[:2]
        return f"{model} ({type(net).__name__}) on {split.info.get('name')}", net, [gpunet.Tensor(a) for a in inputs]
    label = f"{path.name}:{func}"
    fn = load_function(path, func)
    gpunet.manual_seed(0)
    net = build_model(fn, label)
    sample = numpy.zeros((2, *input_shape), numpy.float32)
    try:
        _probe(net, sample, label)  # train's own check that the model takes such inputs
    except UsageError as exc:
        message = str(exc).replace("does not fit x", "does not fit --input-shape")
        raise click.BadParameter(message, param_hint="--input-shape") from exc
    return f"{model} ({type(net).__name__}) on input shape {input_shape}", net, [gpunet.Tensor(sample)]


def load_builtin_trained(checkpoint: str, data_dir: str | None, command: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``load_trained``; a checkpoint of a model from a file is refused with the command that takes it."""
    from gpunet import io
    from gpunet.training import load_trained
    from gpunet.training.checkpoint import TrainingCheckpointError
    from gpunet.training.user_model import is_model_file

    try:
        return load_trained(checkpoint, data_dir, command)
    except TrainingCheckpointError as exc:
        recipe = io.load(checkpoint).get("recipe") if exc.field == "recipe" else None  # only on this error
        if not isinstance(recipe, str) or not is_model_file(recipe):
            raise
        raise click.BadParameter(f"{checkpoint} holds the model {recipe!r} from a file; run `gpunet {command} "
                                 f"{recipe} --checkpoint {checkpoint} --data FILE.npz`",
                                 param_hint="'CHECKPOINT'") from exc
