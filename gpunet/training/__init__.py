"""Training: the one Trainer (any Module, exact resume, callbacks), recipes, evaluation, run builders.

``Trainer(model, optimizer, task, train, validation, epochs=..., callbacks=...).fit()`` trains any
Module with deferred device-side metrics, NaN/inf roll-back, checkpoints and exact resume;
``fit(...)`` is its one-call form. ``get_recipe(name)`` gives a built-in model's defaults,
``prepare_run`` builds it for a dataset and ``recipe_trainer(recipe, model, split,
make_settings(recipe))`` hands it to the same Trainer; ``load_trained`` rebuilds a trained model
from its checkpoint; ``prepare_user_run`` makes a
recipe of a user's ``FILE.py:FUNC`` and ``.npz`` (``gpunet train FILE.py:FUNC --data FILE.npz``).
"""

from gpunet.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLinesLogger,
    ModelCheckpoint,
    TensorBoardLogger,
)
from gpunet.training.errors import TrainingError, UsageError
from gpunet.training.fit import fit, fit_trainer
from gpunet.training.metrics import compute_loss, evaluate, labels_of, predictions
from gpunet.training.recipes import RECIPES, Recipe, get_recipe
from gpunet.training.runs import (
    check_model,
    check_resume_model,
    compile_kernels,
    dry_run,
    load_trained,
    make_optimizer,
    make_settings,
    prepare_run,
    recipe_trainer,
    reported_history,
)
from gpunet.training.settings import History, Settings
from gpunet.training.signals import deferred_interrupts, sigterm_as_interrupt
from gpunet.training.tasks import Task, make_task
from gpunet.training.threads import blas_threads
from gpunet.training.trainer import Progress, Trainer
from gpunet.training.user_model import prepare_user_run

__all__ = [
    "CSVLogger", "Callback", "EarlyStopping", "JSONLinesLogger", "ModelCheckpoint", "TensorBoardLogger", "fit",
    "fit_trainer",
    "RECIPES", "History", "Progress", "Recipe", "Settings", "Trainer", "TrainingError", "UsageError",
    "blas_threads", "check_model", "check_resume_model", "compile_kernels", "compute_loss", "deferred_interrupts",
    "dry_run",
    "evaluate", "get_recipe", "labels_of", "load_trained", "make_optimizer", "make_settings", "predictions",
    "prepare_run", "prepare_user_run", "recipe_trainer", "reported_history", "sigterm_as_interrupt", "Task",
    "make_task",
]
