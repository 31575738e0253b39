"""numba.cuda launchers on a real GPU, on CuPy arrays, against the NumPy reference.

Deselected on the CPU with ``-m "not gpu"``; on a GPU machine these run unconditionally.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpunet import config
from gpunet.cuda import numba_ops
from gpunet.ops import catalog, cells, registry
from gpunet.ops import conv2d as conv_impl

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


def _assert_close(got, want: np.ndarray, what: str) -> None:
    got = got.get()
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 2e-5 if want.dtype == np.float32 else 1e-12
    err = float(np.abs(got - want).max(initial=0.0)) / scale
    assert err <= tol, f"{what}: relative error {err:.3g}"


def test_available_lists_every_hot_op() -> None:
    assert numba_ops.unavailable_reason() is None
    assert set(numba_ops.available()) == set(catalog.HOT_OPS)


def test_registry_picks_numba_when_asked() -> None:
    with config.set_kernels("numba"):
        for name in catalog.HOT_OPS:
            assert registry.lookup(name, "cupy") is numba_ops.OPS[name]


# (N, C_in, H, W), (C_out, kh, kw), stride, padding, dilation
CONV_CASES = {
    "lenet-c1": ((8, 1, 28, 28), (6, 5, 5), (1, 1), (2, 2), (1, 1)),
    "ragged-tiles": ((3, 7, 13, 11), (65, 3, 3), (1, 1), (1, 1), (1, 1)),
    "stride2-dil2": ((2, 5, 17, 19), (9, 3, 2), (2, 3), (1, 2), (2, 1)),
    "1x1-stride2": ((4, 33, 9, 9), (17, 1, 1), (2, 2), (0, 0), (1, 1)),
    "big-k-reduction": ((2, 64, 8, 8), (70, 3, 3), (1, 1), (1, 1), (1, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_matches_reference(cp, case: tuple, dtype: type) -> None:
    x_shape, (c_out, kh, kw), stride, padding, dilation = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((c_out, x_shape[1], kh, kw)).astype(dtype)
    y_ref = conv_impl.conv2d_forward(x, w, stride, padding, dilation)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    xd, wd, gyd = cp.asarray(x), cp.asarray(w), cp.asarray(gy)
    _assert_close(numba_ops.conv2d_forward(xd, wd, stride, padding, dilation), y_ref, "forward")
    _assert_close(numba_ops.conv2d_backward_input(gyd, wd, x.shape, stride, padding, dilation),
                  conv_impl.conv2d_backward_input(gy, w, x.shape, stride, padding, dilation),
                  "backward_input")
    _assert_close(numba_ops.conv2d_backward_weight(xd, gyd, w.shape, stride, padding, dilation),
                  conv_impl.conv2d_backward_weight(x, gy, w.shape, stride, padding, dilation),
                  "backward_weight")


def _cell_inputs(rng: np.random.Generator, gates: int, dtype: type) -> dict[str, np.ndarray]:
    b, h = 37, 70  # B*H not a multiple of the block size
    rand = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    mask = (rng.random(b) < 0.7).astype(dtype)
    return {"xg": rand(b, gates * h), "hg": rand(b, gates * h), "b_hh": rand(gates * h),
            "h_prev": rand(b, h), "c_prev": rand(b, h), "dh": rand(b, h), "dc": rand(b, h),
            "mask": mask}


def _compare(got: tuple, want: tuple, what: str) -> None:
    for k, (g, r) in enumerate(zip(got, want, strict=True)):
        _assert_close(g, r, f"{what}[{k}]")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_rnn_step(cp, act: str, dtype: type) -> None:
    a = _cell_inputs(np.random.default_rng(1), 1, dtype)
    d = {k: cp.asarray(v) for k, v in a.items()}
    h_ref = cells.rnn_step_forward(a["xg"], a["hg"], a["b_hh"], a["h_prev"], a["mask"], act)
    h = numba_ops.rnn_step_forward(d["xg"], d["hg"], d["b_hh"], d["h_prev"], d["mask"], act)
    _assert_close(h, h_ref, "h")
    got = numba_ops.rnn_step_backward(cp.asarray(h_ref), d["dh"], d["mask"], act)
    assert got[0] is got[1]
    _compare(got, cells.rnn_step_backward(h_ref, a["dh"], a["mask"], act), "rnn backward")


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_step(cp, dtype: type) -> None:
    a = _cell_inputs(np.random.default_rng(2), 4, dtype)
    d = {k: cp.asarray(v) for k, v in a.items()}
    args = ("xg", "hg", "b_hh", "h_prev", "c_prev", "mask")
    want = cells.lstm_step_forward(*(a[k] for k in args))
    _compare(numba_ops.lstm_step_forward(*(d[k] for k in args)), want, "lstm forward")
    gates, c = want[2], want[1]
    got = numba_ops.lstm_step_backward(cp.asarray(gates), d["c_prev"], cp.asarray(c), d["dh"],
                                       d["dc"], d["mask"])
    ref = cells.lstm_step_backward(gates, a["c_prev"], c, a["dh"], a["dc"], a["mask"])
    _compare(got, ref, "lstm backward")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_step(cp, dtype: type) -> None:
    a = _cell_inputs(np.random.default_rng(3), 3, dtype)
    d = {k: cp.asarray(v) for k, v in a.items()}
    args = ("xg", "hg", "b_hh", "h_prev", "mask")
    want = cells.gru_step_forward(*(a[k] for k in args))
    _compare(numba_ops.gru_step_forward(*(d[k] for k in args)), want, "gru forward")
    got = numba_ops.gru_step_backward(cp.asarray(want[1]), d["h_prev"], d["dh"], d["mask"])
    _compare(got, cells.gru_step_backward(want[1], a["h_prev"], a["dh"], a["mask"]),
             "gru backward")


def test_runs_on_cupys_current_stream(cp) -> None:
    x = cp.random.standard_normal((2, 3, 9, 9)).astype(cp.float32)
    w = cp.random.standard_normal((4, 3, 3, 3)).astype(cp.float32)
    with cp.cuda.Stream(non_blocking=True):
        y = numba_ops.conv2d_forward(x, w, (1, 1), (1, 1), (1, 1))
        y_ref = conv_impl.conv2d_forward(x, w, (1, 1), (1, 1), (1, 1))
        assert float(cp.abs(y - y_ref).max()) < 1e-4


def test_validation_errors(cp) -> None:
    x = cp.zeros((1, 2, 5, 5), cp.float32)
    w = cp.zeros((3, 2, 3, 3), cp.float32)
    with pytest.raises(TypeError, match="'w' is float64 but the other inputs are float32"):
        numba_ops.conv2d_forward(x, w.astype(cp.float64), (1, 1), (0, 0), (1, 1))
    with pytest.raises(TypeError, match="float32 or float64, got float16"):
        numba_ops.conv2d_forward(x.astype(cp.float16), w, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="C-contiguous"):
        numba_ops.conv2d_forward(x[:, :, :, ::2], w, (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="do not match"):
        numba_ops.conv2d_forward(x, cp.zeros((3, 4, 3, 3), cp.float32), (1, 1), (0, 0), (1, 1))
    with pytest.raises(ValueError, match=r"'gy' has shape"):
        numba_ops.conv2d_backward_input(cp.zeros((1, 3, 2, 2), cp.float32), w, x.shape, (1, 1),
                                        (0, 0), (1, 1))
    h = cp.zeros((4, 6), cp.float32)
    with pytest.raises(ValueError, match=r"'mask' has shape \(3,\), expected \(4,\)"):
        numba_ops.rnn_step_forward(h, h, cp.zeros(6, cp.float32), h, cp.ones(3, cp.float32))
    with pytest.raises(ValueError, match="nonlinearity"):
        numba_ops.rnn_step_backward(h, h, cp.ones(4, cp.float32), "sigmoid")
