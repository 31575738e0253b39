"""Optimizers against their update formulas and against PyTorch; parameter groups; state; validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gpunet import io, optim
from gpunet.nn import Parameter


def param(values):
    return Parameter(np.asarray(values, dtype=np.float64))


# ----- the formulas ---------------------------------------------------------------------------

def test_sgd_momentum_weight_decay_follow_pytorchs_form():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    v = np.zeros(2)
    w = p.data.copy()
    for g in ([0.5, 0.5], [1.0, -1.0], [0.0, 2.0]):
        p.grad = np.array(g)
        opt.step()
        d = np.array(g) + 0.01 * w
        v = d if not v.any() else 0.9 * v + d
        w = w - 0.1 * v
        np.testing.assert_allclose(p.data, w)


def test_adam_matches_the_paper():
    p = param([0.5])
    opt = optim.Adam([p], lr=0.01)
    m = v = 0.0
    w = 0.5
    for t, g in enumerate([0.3, -0.1, 0.7], start=1):
        p.grad = np.array([g])
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= 0.01 * (m / (1 - 0.9 ** t)) / (math.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        assert p.data[0] == pytest.approx(w, rel=1e-9)


def test_adamw_decays_the_weights_not_the_gradient():
    p, q = param([2.0]), param([2.0])
    adamw, adam = optim.AdamW([p], lr=0.1, weight_decay=0.5), optim.Adam([q], lr=0.1)
    p.grad, q.grad = np.array([0.3]), np.array([0.3])
    adamw.step()
    adam.step()
    assert p.data[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5) - (2.0 - q.data[0]), rel=1e-12)


def test_updates_are_in_place_on_the_parameter_array():
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), optim.Adam, optim.AdamW, optim.RMSprop,
                 optim.Adagrad):
        p = param([1.0, 2.0])
        array = p.data
        opt = make([p])
        p.grad = np.array([0.1, 0.2])
        opt.step()
        assert p.data is array and not np.array_equal(array, [1.0, 2.0])


# ----- against PyTorch -----------------------------------------------------------------------

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "amsgrad": True}),
    ("Adam", {"lr": 0.02, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.7, "centered": True, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.01, "initial_accumulator_value": 0.2,
                 "eps": 1e-6}),
]


def _torch_pair(name: str, options: dict, groups: bool = False):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [Parameter(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    if groups:  # the second group overrides lr (and keeps the rest)
        mine = optim.__dict__[name]([{"params": [ours[0]]}, {"params": [ours[1]], "lr": options["lr"] / 3}],
                                    **options)
        torch_opt = getattr(torch.optim, name)([{"params": [theirs[0]]},
                                                {"params": [theirs[1]], "lr": options["lr"] / 3}], **options)
    else:
        mine = optim.__dict__[name](ours, **options)
        torch_opt = getattr(torch.optim, name)(theirs, **options)
    return torch, rng, ours, theirs, mine, torch_opt


def _step_both(torch, rng, ours, theirs, mine, torch_opt, steps=6):
    for _ in range(steps):
        for p, t in zip(ours, theirs):
            g = rng.standard_normal(p.shape)
            p.grad = g.copy()
            t.grad = torch.tensor(g.copy())
        mine.step()
        torch_opt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_updates_equal_pytorchs(name, options):
    _step_both(*_torch_pair(name, options))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_param_groups_with_their_own_lr_equal_pytorchs(name):
    options = {"lr": 0.03, **({"momentum": 0.9} if name in ("SGD", "RMSprop") else {})}
    torch, rng, ours, theirs, mine, torch_opt = _torch_pair(name, options, groups=True)
    assert [g["lr"] for g in mine.param_groups] == [0.03, 0.01]
    _step_both(torch, rng, ours, theirs, mine, torch_opt)


@pytest.mark.parametrize(("name", "options"), CASES[1::2], ids=[n for n, _ in CASES[1::2]])
def test_state_dict_has_pytorchs_structure_and_loads_torchs(name, options):
    torch, rng, ours, theirs, mine, torch_opt = _torch_pair(name, options, groups=True)
    _step_both(torch, rng, ours, theirs, mine, torch_opt, steps=2)
    sd, tsd = mine.state_dict(), torch_opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(group) <= set(tgroup)
        assert all(group[k] == (list(tgroup[k]) if isinstance(tgroup[k], tuple) else tgroup[k]) for k in group)
    assert sorted(int(k) for k in sd["state"]) == sorted(tsd["state"])
    for key, buffers in sd["state"].items():
        assert set(buffers) == set(tsd["state"][int(key)]), key
    # a fresh optimizer of ours loads torch's state dict (int keys, torch tensors) and continues as torch does
    again = [Parameter(t.detach().numpy().copy()) for t in theirs]
    other = optim.__dict__[name]([{"params": [again[0]]}, {"params": [again[1]]}], **options)
    other.load_state_dict(tsd)
    _step_both(torch, rng, again, theirs, other, torch_opt, steps=3)


# ----- groups, zero_grad, state ------------------------------------------------------------

def test_a_list_of_groups_works_at_step_for_every_optimizer():
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad):
        a, b = param([1.0]), param([1.0])
        opt = cls([{"params": [a], "lr": 0.0}, {"params": [b], "lr": 0.1}], lr=0.5)
        a.grad, b.grad = np.array([1.0]), np.array([1.0])
        opt.step()
        assert a.data[0] == 1.0 and b.data[0] < 1.0, cls.__name__
        assert opt.params == [a, b] and len(opt.state) == 2


def test_add_param_group_and_lr_property():
    a, b = param([1.0]), param([2.0])
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.2})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.2
    opt.lr = 0.05
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05] and opt.lr == 0.05
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_zero_grad_set_to_none_or_in_place():
    p = param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([3.0, 4.0])
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and not g.any()
    opt.zero_grad()
    assert p.grad is None


def test_step_skips_parameters_without_a_gradient_and_returns_the_closure():
    a, b = param([1.0]), param([1.0])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0])
    assert opt.step(lambda: 7.0) == 7.0
    assert b.data[0] == 1.0 and opt.state[1] == {} and opt.state[0]["step"] == 1


def test_state_dict_round_trip_gives_identical_updates():
    p1, p2 = param([1.0, 2.0]), param([1.0, 2.0])
    o1 = optim.Adam([p1], lr=0.1)
    p1.grad = np.array([0.1, -0.2])
    o1.step()
    p2.data = p1.data.copy()
    o2 = optim.Adam([p2], lr=0.1)
    o2.load_state_dict(o1.state_dict())
    for o, p in ((o1, p1), (o2, p2)):
        p.grad = np.array([0.3, 0.4])
        o.step()
    np.testing.assert_array_equal(p1.data, p2.data)


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_state_round_trips_through_a_checkpoint_exactly(tmp_path: Path, name, options):
    rng = np.random.default_rng(1)
    start = [rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in start] for _ in range(6)]
    params = [Parameter(a.copy()) for a in start]
    cls = optim.__dict__[name]
    opt = cls([{"params": [params[0]]}, {"params": [params[1]], "lr": options["lr"] / 2}], **options)

    def run(o, ps, chunk):
        for step in chunk:
            for p, g in zip(ps, step):
                p.grad = g.copy()
            o.step()

    run(opt, params, grads[:3])
    io.save({"params": [p.data for p in params], "optimizer": opt.state_dict()}, tmp_path / "o.npz")
    saved = io.load(tmp_path / "o.npz")
    run(opt, params, grads[3:])
    restored = [Parameter(a) for a in saved["params"]]
    other = cls([{"params": [restored[0]]}, {"params": [restored[1]]}], **{**options, "lr": 0.5})
    other.load_state_dict(saved["optimizer"])
    assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in opt.param_groups]
    run(other, restored, grads[3:])
    for p, q in zip(params, restored):
        assert p.data.dtype == q.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, q.data)


def test_loads_the_earlier_gpunet_format():
    p = param([1.0, 2.0])
    legacy = {"type": "SGD", "hyper": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
              "steps": 1, "state": [{"velocity": np.array([0.5, 0.5])}]}
    opt = optim.SGD([p], lr=0.3, momentum=0.5)
    opt.load_state_dict(legacy)
    assert opt.lr == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], [0.5, 0.5])
    q = param([1.0])
    adam = optim.Adam([q])
    adam.load_state_dict({"type": "Adam", "hyper": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-8,
                                                    "weight_decay": 0.0}, "steps": 4,
                          "state": [{"m": np.array([0.1]), "v": np.array([0.2])}]})
    assert adam.param_groups[0]["betas"] == (0.8, 0.99) and adam.state[0]["step"] == 4
    with pytest.raises(ValueError, match="not of a Adam"):
        adam.load_state_dict({**legacy, "type": "SGD"})


# ----- no host syncs in step -------------------------------------------------------------------

class NoSync(np.ndarray):
    """An array that refuses to be read back as a Python value, as a device array would cost a sync."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("a host sync in the optimizer step")

    __float__ = __int__ = __bool__ = __index__ = item = tolist = _refuse


@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_step_reads_nothing_back_from_the_arrays(name, options):
    p = Parameter(np.zeros(3))
    opt = optim.__dict__[name]([p], **options)
    p.data = np.array([1.0, -2.0, 3.0]).view(NoSync)
    for _ in range(3):
        p.grad = np.array([0.1, 0.2, -0.3]).view(NoSync)
        opt.step()
    assert isinstance(p.data, NoSync)


# ----- validation ------------------------------------------------------------------------------

BAD = [
    (optim.SGD, {"lr": float("nan")}, "SGD: lr must be a finite number >= 0"),
    (optim.SGD, {"lr": -1}, "SGD: lr must be a finite number >= 0, got -1"),
    (optim.SGD, {"lr": float("inf")}, "SGD: lr"),
    (optim.SGD, {"momentum": -0.1}, "SGD: momentum must be a finite number >= 0 and <= 1"),
    (optim.SGD, {"momentum": float("nan")}, "SGD: momentum"),
    (optim.SGD, {"weight_decay": -1}, "SGD: weight_decay must be a finite number >= 0"),
    (optim.SGD, {"nesterov": True}, "SGD: nesterov=True needs momentum > 0"),
    (optim.SGD, {"nesterov": "yes"}, "SGD: nesterov must be True or False"),
    (optim.Adam, {"eps": -1}, "Adam: eps must be a finite number >= 0"),
    (optim.Adam, {"lr": float("nan")}, "Adam: lr"),
    (optim.Adam, {"betas": (1.0, 0.999)}, r"Adam: betas\[0\] must be a finite number >= 0 and < 1"),
    (optim.Adam, {"betas": (0.9, float("nan"))}, r"Adam: betas\[1\]"),
    (optim.Adam, {"betas": 0.9}, "Adam: betas must be a pair"),
    (optim.AdamW, {"weight_decay": float("nan")}, "AdamW: weight_decay"),
    (optim.RMSprop, {"alpha": 1.5}, "RMSprop: alpha"),
    (optim.RMSprop, {"eps": float("-inf")}, "RMSprop: eps"),
    (optim.Adagrad, {"lr_decay": -1}, "Adagrad: lr_decay"),
    (optim.Adagrad, {"initial_accumulator_value": -1}, "Adagrad: initial_accumulator_value"),
]


@pytest.mark.parametrize(("cls", "options", "message"), BAD, ids=[f"{c.__name__}-{m[:30]}" for c, _, m in BAD])
def test_bad_hyperparameters_name_the_class_and_argument(cls, options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cls([param([1.0])], **options)


def test_bad_types_and_groups():
    with pytest.raises(TypeError, match="SGD: lr must be a real number, got '0.1'"):
        optim.SGD([param([1.0])], lr="0.1")
    with pytest.raises(TypeError, match="SGD: lr must be a real number, got True"):
        optim.SGD([param([1.0])], lr=True)
    with pytest.raises(ValueError, match=r"Adam: param_groups\[1\]: lr must be a finite number"):
        optim.Adam([{"params": [param([1.0])]}, {"params": [param([1.0])], "lr": float("nan")}])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(param([1.0]))
    with pytest.raises(TypeError, match=r"params\[1\] must be a Parameter"):
        optim.Adam([param([1.0]), np.zeros(2)])
    with pytest.raises(ValueError, match="no 'params'"):
        optim.Adam([{"lr": 0.1}])
    with pytest.raises(ValueError, match="appears twice"):
        p = param([1.0])
        optim.Adam([p, p])


def test_load_state_dict_refuses_what_does_not_fit():
    sgd = optim.SGD([param([1.0])], momentum=0.9)
    with pytest.raises(ValueError, match="load_state_dict"):
        sgd.load_state_dict(optim.Adam([param([1.0])]).state_dict())
    with pytest.raises(ValueError, match="2 parameter groups"):
        two = optim.SGD([{"params": [param([1.0])]}, {"params": [param([1.0])]}])
        sgd.load_state_dict(two.state_dict())
    good = sgd.state_dict()
    bad_shape = {**good, "state": {"0": {"momentum_buffer": np.zeros(3)}}}
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: state\[0\]: buffer 'momentum_buffer' has shape"):
        sgd.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="unknown buffer 'velocity'"):
        sgd.load_state_dict({**good, "state": {"0": {"velocity": np.zeros(1)}}})
    with pytest.raises(ValueError, match="not a parameter index"):
        sgd.load_state_dict({**good, "state": {"5": {"momentum_buffer": np.zeros(1)}}})
    with pytest.raises(TypeError, match="must be an array"):
        sgd.load_state_dict({**good, "state": {"0": {"momentum_buffer": "1.5"}}})
    with pytest.raises(TypeError, match="must hold real numbers"):
        sgd.load_state_dict({**good, "state": {"0": {"momentum_buffer": np.array(["x"])}}})
    nan_lr = {**good, "param_groups": [{**good["param_groups"][0], "lr": float("nan")}]}
    with pytest.raises(ValueError, match=r"param_groups\[0\]: lr must be a finite number"):
        sgd.load_state_dict(nan_lr)
    with pytest.raises(TypeError, match="expected a dict"):
        sgd.load_state_dict([1, 2])
    assert sgd.state == [{}]  # nothing was half-loaded


def test_legacy_clip_grad_norm_scales_to_max_norm():
    a, b = param([0.0, 0.0]), param([0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert optim.clip_grad_norm([a, b], 1.0) == pytest.approx(5.0)
    total = math.sqrt((a.grad ** 2).sum() + (b.grad ** 2).sum())
    assert total == pytest.approx(1.0, rel=1e-5)
    assert optim.clip_grad_norm([a, b], 10.0) == pytest.approx(1.0, rel=1e-5)  # no change below max
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm must be a finite number"):
        optim.clip_grad_norm([a], float("nan"))


def test_the_recipe_table_names_every_optimizer():
    assert set(optim.OPTIMIZERS) == {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
    assert all(issubclass(c, optim.Optimizer) for c in optim.OPTIMIZERS.values())
