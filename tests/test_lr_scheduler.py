"""Learning-rate schedulers: values equal PyTorch's, state_dict round trips, validation."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from gpunet import io, optim
from gpunet.nn import Parameter
from gpunet.optim import lr_scheduler as S


def _opt(kind="SGD", groups=2, **options):
    params = [Parameter(np.zeros(2)) for _ in range(groups)]
    spec = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)]
    return getattr(optim, kind)(spec, **options)


def _torch_opt(torch, kind="SGD", groups=2, **options):
    params = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    spec = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)]
    return getattr(torch.optim, kind)(spec, **options)


class Warmup:
    """A callable object with state (saved by LambdaLR.state_dict, as in PyTorch)."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.steps)


SCHEDULES = {
    "step": (lambda m, o: m.StepLR(o, step_size=3, gamma=0.5), 12),
    "multistep": (lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3), 12),
    "exponential": (lambda m, o: m.ExponentialLR(o, gamma=0.9), 10),
    "cosine": (lambda m, o: m.CosineAnnealingLR(o, T_max=5, eta_min=0.001), 23),
    "lambda": (lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e), 10),
    "lambda-object": (lambda m, o: m.LambdaLR(o, [Warmup(4), lambda e: 1 / (e + 1)]), 10),
    "onecycle": (lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=20), 19),
    "onecycle-linear-3phase": (lambda m, o: m.OneCycleLR(o, max_lr=0.8, epochs=3, steps_per_epoch=5,
                                                         anneal_strategy="linear", three_phase=True,
                                                         pct_start=0.25), 14),
}


def _momenta(opt):
    return [(g.get("momentum"), tuple(g["betas"]) if "betas" in g else None) for g in opt.param_groups]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_values_equal_pytorchs(name, kind):
    torch = pytest.importorskip("torch")
    make, steps = SCHEDULES[name]
    options = {"momentum": 0.9} if kind == "SGD" else {}
    ours, theirs = _opt(kind, **options), _torch_opt(torch, kind, **options)
    mine, ref = make(S, ours), make(torch.optim.lr_scheduler, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            assert mine.get_last_lr() == ref.get_last_lr()
            assert [g["lr"] for g in ours.param_groups] == [g["lr"] for g in theirs.param_groups]
            assert _momenta(ours) == _momenta(theirs)
            ours.step()
            theirs.step()
            mine.step()
            ref.step()
    assert mine.get_last_lr() == ref.get_last_lr()


@pytest.mark.parametrize("name", ["step", "multistep", "exponential", "cosine"])
def test_closed_forms_with_an_epoch_equal_pytorchs(name):
    torch = pytest.importorskip("torch")
    make, _ = SCHEDULES[name]
    ours, theirs = _opt(), _torch_opt(torch)
    mine, ref = make(S, ours), make(torch.optim.lr_scheduler, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (4, 7, 2, 11):
            mine.step(epoch)
            ref.step(epoch)
            assert mine.get_last_lr() == pytest.approx(ref.get_last_lr(), rel=1e-15)


def test_reduce_on_plateau_equals_pytorchs():
    torch = pytest.importorskip("torch")
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.2, 0.3, 0.3, 0.3]
    for options in ({"patience": 1, "factor": 0.5, "cooldown": 1, "min_lr": [0.02, 0.0]},
                    {"mode": "max", "patience": 0, "threshold": 0.1, "threshold_mode": "abs"}):
        ours, theirs = _opt(), _torch_opt(torch)
        mine = S.ReduceLROnPlateau(ours, **options)
        ref = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **options)
        for m in metrics:
            mine.step(m)
            ref.step(m)
            assert mine.get_last_lr() == ref.get_last_lr()
            assert (mine.best, mine.num_bad_epochs, mine.cooldown_counter) == \
                   (ref.best, ref.num_bad_epochs, ref.cooldown_counter)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_state_dict_round_trips_through_a_checkpoint(tmp_path: Path, name):
    make, steps = SCHEDULES[name]
    opt = _opt(momentum=0.9)
    sched = make(S, opt)
    for _ in range(steps // 2):
        opt.step()
        sched.step()
    io.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "s.npz")
    saved = io.load(tmp_path / "s.npz")
    opt2 = _opt(momentum=0.9)
    sched2 = make(S, opt2)
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    if name == "lambda-object":
        assert sched2.lr_lambdas[0].steps == 4
    for _ in range(steps - steps // 2):
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
        for o in (opt, opt2):
            o.step()
        sched.step()
        sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_reduce_on_plateau_state_round_trips(tmp_path: Path):
    opt = _opt()
    sched = S.ReduceLROnPlateau(opt, patience=1)
    for m in (1.0, 1.0, 1.0):
        sched.step(m)
    io.save({"s": sched.state_dict()}, tmp_path / "p.npz")
    other = S.ReduceLROnPlateau(_opt(), patience=5)
    other.load_state_dict(io.load(tmp_path / "p.npz")["s"])
    assert (other.patience, other.best, other.num_bad_epochs) == (1, 1.0, sched.num_bad_epochs)
    fresh = S.ReduceLROnPlateau(_opt())
    io.save({"s": fresh.state_dict()}, tmp_path / "q.npz")  # best = inf survives the file
    assert io.load(tmp_path / "q.npz")["s"]["best"] == float("inf")


def test_schedulers_set_initial_lr_and_get_last_lr_is_a_copy():
    opt = _opt()
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.2]
    last = sched.get_last_lr()
    last.append(9)
    assert sched.get_last_lr() == [0.1, 0.2]
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), step_size=1, last_epoch=3)


BAD = [
    (lambda o: S.StepLR(o, step_size=0), ValueError, "StepLR: step_size must be an integer >= 1"),
    (lambda o: S.StepLR(o, step_size=2.5), TypeError, "StepLR: step_size must be an integer"),
    (lambda o: S.StepLR(o, step_size=2, gamma=float("nan")), ValueError, "StepLR: gamma"),
    (lambda o: S.MultiStepLR(o, milestones=[1, -2]), ValueError, r"MultiStepLR: milestones\[1\]"),
    (lambda o: S.MultiStepLR(o, milestones=3), TypeError, "MultiStepLR: milestones must be a list"),
    (lambda o: S.ExponentialLR(o, gamma=-1), ValueError, "ExponentialLR: gamma"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError, "CosineAnnealingLR: T_max"),
    (lambda o: S.CosineAnnealingLR(o, T_max=3, eta_min=float("inf")), ValueError, "CosineAnnealingLR: eta_min"),
    (lambda o: S.LambdaLR(o, [lambda e: 1.0]), ValueError, "LambdaLR: expected 2 lr_lambdas"),
    (lambda o: S.LambdaLR(o, 0.5), TypeError, r"LambdaLR: lr_lambda\[0\] must be callable"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0), ValueError, "OneCycleLR: pass total_steps"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError, "OneCycleLR: total_steps"),
    (lambda o: S.OneCycleLR(o, max_lr=float("nan"), total_steps=5), ValueError, "OneCycleLR: max_lr"),
    (lambda o: S.OneCycleLR(o, max_lr=[1.0], total_steps=5), ValueError, "OneCycleLR: expected 2 values of max_lr"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5), ValueError, "OneCycleLR: pct_start"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     "OneCycleLR: anneal_strategy"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, "ReduceLROnPlateau: factor"),
    (lambda o: S.ReduceLROnPlateau(o, mode="low"), ValueError, "ReduceLROnPlateau: mode"),
    (lambda o: S.ReduceLROnPlateau(o, patience=-1), ValueError, "ReduceLROnPlateau: patience"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "ReduceLROnPlateau: expected 2 values of min_lr"),
    (lambda o: S.StepLR(object(), step_size=1), TypeError, "StepLR: optimizer must be a gpunet.optim.Optimizer"),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD, ids=[m[:40] for _, _, m in BAD])
def test_bad_arguments_name_the_class_and_argument(make, error, message):
    with pytest.raises(error, match=message):
        make(_opt())


def test_misuse_at_run_time():
    opt = _opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="beyond total_steps=2"):
        sched.step()
    with pytest.raises(ValueError, match="cycle_momentum=True needs an optimizer with momentum"):
        S.OneCycleLR(_opt("Adagrad"), max_lr=1.0, total_steps=5)
    plateau = S.ReduceLROnPlateau(_opt())
    with pytest.raises(TypeError, match="metrics must be a number"):
        plateau.step("low")
    with pytest.raises(ValueError, match="does not fit a StepLR"):
        S.StepLR(_opt(), step_size=2).load_state_dict({"bogus": 1, "base_lrs": [0.1], "last_epoch": 0})
