"""The ``impl`` fixture: one test body per op, run on every implementation that can run here.

A test names the ops it needs and its case table with the ``ops`` marker::

    @pytest.mark.ops("conv2d_forward", "conv2d_backward_input", cases=cases.CONV_CASES)
    def test_conv(impl, case, dtype): ...

and is parametrized (``pytest_generate_tests`` below) over every implementation registered for
all of those ops (``gpunet.ops.catalog``) crossed with the cases of the table that implementation
is fast enough for (the cases' tiers, see ``cases.py``):

=============  ===================================================  ===============  ===========
id             what runs                                            arrays           cases
=============  ===================================================  ===============  ===========
numpy-ref      the reference (the spec)                             NumPy            all
numpy-fast     the compiled CPU fast path (where registered)        NumPy            all
raw-emu        ``RawOps`` over the g++ CPU grid emulator             guarded NumPy    tiny, small
               (``tests/kernels/emulator``), i.e. kernels/*.cu
numba-sim      the numba.cuda launchers on numba's CUDA simulator   NumPy            tiny
cupy           the reference on the GPU (``-m gpu``)                CuPy             all
raw, numba     the kernels on a real GPU (``-m gpu``)               CuPy             all
=============  ===================================================  ===============  ===========

``impl.op(name)`` / ``impl[name]`` is the op's implementation object exactly as the registry
loads it (for raw-emu the registry's raw entries are pointed at the emulated launchers for the
test, so the real ``RAW`` conv object, ``RAW_LOOP`` and ``SEQUENCE_INFERENCE`` run the emulated
kernels; for numba-sim the launchers' CuPy layer is stood in by NumPy), ``impl.put`` /
``impl.get`` move arrays in and out, ``impl.xp`` is the array module.

**The numba simulator.** numba.cuda picks the simulator or the real target once, when it is
first imported, from ``NUMBA_ENABLE_CUDASIM``. This conftest (like tests/kernels/conftest.py)
turns the simulator on at collection when no GPU is usable and numba.cuda is not imported yet:
on a CPU machine, CI included, a plain ``pytest -m "not gpu"`` runs the numba-sim cases in
process. Where numba.cuda is the real target (a GPU machine), they are skipped in process and
``test_simulator.py::test_numba_sim_cases_in_a_subprocess`` reruns ``pytest tests/ops -k
numba-sim`` with the simulator enabled.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest

from gpunet.backend import gpu_status
from gpunet.ops import registry

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent / "kernels"):  # ``import cases``, ``from emulator import grid``
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def _use_cudasim_without_gpu() -> None:
    if "numba.cuda" in sys.modules or gpu_status()[0]:
        return
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:  # numba's config already read the environment: re-read it
        from numba.core import config

        config.reload_config()


_use_cudasim_without_gpu()


def simulator_in_process() -> bool:
    """Whether numba.cuda is (or will be, when first imported) the simulator in this process."""
    if "numba.cuda" in sys.modules:
        return bool(sys.modules["numba.cuda"].config.ENABLE_CUDASIM)
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


@dataclasses.dataclass(frozen=True)
class Spec:
    id: str           # the test id
    name: str         # the registry's implementation name
    tier: str         # the largest case tier it runs
    gpu: bool = False


SPECS = (
    Spec("numpy-ref", "numpy-ref", "large"),
    Spec("numpy-fast", "numpy-fast", "large"),
    Spec("raw-emu", "raw", "small"),
    Spec("numba-sim", "numba", "tiny"),
    Spec("cupy", "cupy", "large", gpu=True),
    Spec("raw", "raw", "large", gpu=True),
    Spec("numba", "numba", "large", gpu=True),
)
TIERS = ("tiny", "small", "large")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ops(*names, cases=None, impls=None): the ops a test of tests/ops runs "
                            "(parametrizes the impl fixture; see tests/ops/conftest.py)")


def _registered(name: str, ops: tuple[str, ...]) -> bool:
    try:
        return all(registry.get(op, name) for op in ops)
    except KeyError:
        return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ops")
    if "impl" not in metafunc.fixturenames or marker is None:
        return
    ops, table = marker.args, marker.kwargs.get("cases")
    only = marker.kwargs.get("impls")
    specs = [s for s in SPECS if _registered(s.name, ops) and (only is None or s.id in only)]
    params = []
    for spec in specs:
        marks = [pytest.mark.gpu] if spec.gpu else []
        if table is None:
            params.append(pytest.param(spec, id=spec.id, marks=marks))
            continue
        limit = TIERS.index(spec.tier)
        params += [pytest.param(spec, case, id=f"{spec.id}-{name}", marks=marks)
                   for name, case in table.items() if TIERS.index(case.tier) <= limit]
    names = "impl" if table is None else ("impl", "case")
    metafunc.parametrize(names, params, indirect=["impl"])


@dataclasses.dataclass
class Impl:
    """One implementation as the tests see it."""

    id: str
    name: str
    xp: Any
    put: Callable[[numpy.ndarray], Any]
    get: Callable[[Any], numpy.ndarray]

    def op(self, op: str) -> Any:
        """The implementation object of ``op`` (what ``registry.get(op, name).load()`` gives)."""
        return registry.get(op, self.name).load()

    def __getitem__(self, op: str) -> Any:
        return self.op(op)


@pytest.fixture(scope="session")
def emulator_lib():
    from emulator import grid

    from gpunet.cuda import raw_ops
    from gpunet.cuda.sources import read_kernel

    if not grid.have_compiler():
        pytest.skip("no C++ compiler for the raw-kernel emulator")
    return grid.build({name: read_kernel(name) for name in raw_ops.KERNELS})


def _copy(a: numpy.ndarray) -> numpy.ndarray:
    return numpy.array(a, copy=True)


@pytest.fixture
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Impl:
    spec: Spec = request.param
    if spec.id in ("numpy-ref", "numpy-fast"):
        if spec.id == "numpy-fast":
            reason = registry.get(request.node.get_closest_marker("ops").args[0], "numpy-fast").unavailable_reason()
            if reason:
                pytest.skip(f"numpy-fast unavailable: {reason}")
        return Impl(spec.id, spec.name, numpy, _copy, numpy.asarray)
    if spec.id == "raw-emu":
        from emulator import grid

        from gpunet.cuda import raw_ops

        # blocks in a shuffled order: every kernel runs so at least once in CI
        rt = grid.EmulatorRuntime(request.getfixturevalue("emulator_lib"), shuffle=1)
        table = raw_ops.RawOps(rt).table()  # the production split-K policy (264 target blocks)
        for op, launcher in table.items():
            monkeypatch.setattr(registry.get(op, "raw"), "_loaded", launcher)
        return Impl(spec.id, spec.name, numpy, rt.guarded, numpy.asarray)
    if spec.id == "numba-sim":
        if not simulator_in_process():
            pytest.skip("numba.cuda is the real target in this process; "
                        "test_simulator.py runs the numba-sim cases in a subprocess")
        from gpunet.cuda import numba_ops

        # the launchers' CuPy layer stood in by NumPy: host arrays go straight to the simulator
        monkeypatch.setattr(numba_ops, "is_cupy_array", lambda a: isinstance(a, numpy.ndarray))
        monkeypatch.setattr(numba_ops, "_cupy", lambda: numpy)
        monkeypatch.setattr(numba_ops, "_dev", lambda a: a)
        monkeypatch.setattr(numba_ops, "_stream", lambda: 0)
        return Impl(spec.id, spec.name, numpy, _copy, numpy.asarray)
    cupy = pytest.importorskip("cupy")
    ok, why = gpu_status()
    assert ok, f"a gpu-marked test ran without a usable GPU: {why}"
    for op in request.node.get_closest_marker("ops").args:
        reason = registry.get(op, spec.name).unavailable_reason()
        assert reason is None, f"{spec.name} cannot run {op} on this GPU: {reason}"
    return Impl(spec.id, spec.name, cupy, cupy.asarray, cupy.asnumpy)


@pytest.fixture(params=[numpy.float32, numpy.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> Any:
    return request.param

