"""Every implementation of every registered op, in one table (by module path: nothing here
imports a GPU launcher; :mod:`gpunet.ops.registry` imports one when it is first chosen).

Adding a hot op: a reference (the spec) in ``gpunet/ops/<op>.py``, one row per implementation
below, and one case table in ``tests/ops/`` (the ``impl`` fixture runs it on every row).
"""

from __future__ import annotations

from gpunet.ops import registry

RAW = "gpunet.cuda.raw_ops"
NUMBA = "gpunet.cuda.numba_ops"
RAW_PROBE = f"{RAW}:unavailable_reason"
NUMBA_PROBE = f"{NUMBA}:unavailable_reason"

#: The kernel-level hot ops: each kernel implementation has the reference's exact signature.
CONV_OPS = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
CELL_OPS = tuple(f"{mode}_step_{way}" for mode in ("rnn", "lstm", "gru") for way in ("forward", "backward"))
SEQUENCE_OPS = tuple(f"{mode}_sequence_forward" for mode in ("rnn", "lstm", "gru"))
HOT_OPS = CONV_OPS + CELL_OPS
#: Function-level implementation objects that the kernel tables serve too (kernels/pool.cu, numba_pool).
POOL_OPS = ("max_pool2d", "avg_pool2d")

# (op, implementation, device, target, probe, table)
TABLE: list[tuple[str, str, str, str, str | None, bool]] = []
for _op in CONV_OPS:
    TABLE += [(_op, "numpy-ref", "numpy", f"gpunet.ops.conv2d:{_op}", None, False),
              (_op, "numpy-fast", "numpy", f"gpunet.ops.conv2d_cpu:{_op}", None, False),
              (_op, "cupy", "cupy", f"gpunet.ops.conv2d:{_op}", None, False)]
for _op in CELL_OPS:
    TABLE += [(_op, "numpy-ref", "numpy", f"gpunet.ops.cells:{_op}", None, False),
              (_op, "cupy", "cupy", f"gpunet.ops.cells:{_op}", None, False)]
for _op in HOT_OPS:
    TABLE += [(_op, "raw", "cupy", f"{RAW}:launcher", RAW_PROBE, True),
              (_op, "numba", "cupy", f"{NUMBA}:launcher", NUMBA_PROBE, True)]
for _op in SEQUENCE_OPS:
    TABLE += [(_op, "raw", "cupy", f"{RAW}:launcher", RAW_PROBE, True)]
TABLE += [
    # the Functions' implementations
    ("conv2d", "numpy-ref", "numpy", "gpunet.ops.conv2d:IM2COL", None, False),
    ("conv2d", "numpy-fast", "numpy", "gpunet.ops.conv2d_cpu:COMPILED", None, False),
    ("conv2d", "cupy", "cupy", "gpunet.ops.conv2d:IM2COL", None, False),
    ("conv2d", "raw", "cupy", "gpunet.ops.conv2d:RAW", RAW_PROBE, False),
    ("conv2d", "numba", "cupy", "gpunet.ops.conv2d:NUMBA", NUMBA_PROBE, False),
    ("linear", "numpy-ref", "numpy", "gpunet.ops.linear:REFERENCE", None, False),
    ("linear", "numpy-fast", "numpy", "gpunet.ops.linear_cpu:COMPILED", None, False),
    ("linear", "cupy", "cupy", "gpunet.ops.linear:REFERENCE", None, False),
    ("linear_relu", "numpy-ref", "numpy", "gpunet.ops.linear:LINEAR_RELU_REFERENCE", None, False),
    ("linear_relu", "numpy-fast", "numpy", "gpunet.ops.linear_cpu:COMPILED_RELU", None, False),
    ("linear_relu", "cupy", "cupy", "gpunet.ops.linear:LINEAR_RELU_ON_DEVICE", None, False),
    ("max_pool2d", "numpy-ref", "numpy", "gpunet.ops.pool:MAX_REFERENCE", None, False),
    ("max_pool2d", "numpy-fast", "numpy", "gpunet.ops.pool:MAX_COMPILED", None, False),
    ("max_pool2d", "cupy", "cupy", "gpunet.ops.pool:MAX_REFERENCE", None, False),
    ("max_pool2d", "raw", "cupy", f"{RAW}:launcher", RAW_PROBE, True),
    ("max_pool2d", "numba", "cupy", f"{NUMBA}:launcher", NUMBA_PROBE, True),
    ("avg_pool2d", "numpy-ref", "numpy", "gpunet.ops.pool:AVG_REFERENCE", None, False),
    ("avg_pool2d", "cupy", "cupy", "gpunet.ops.pool:AVG_REFERENCE", None, False),
    ("avg_pool2d", "raw", "cupy", f"{RAW}:launcher", RAW_PROBE, True),
    ("avg_pool2d", "numba", "cupy", f"{NUMBA}:launcher", NUMBA_PROBE, True),
    ("relu_max_pool2d", "numpy-ref", "numpy", "gpunet.ops.relu_pool:MAX_REFERENCE", None, False),
    ("relu_max_pool2d", "numpy-fast", "numpy", "gpunet.ops.relu_pool:MAX_COMPILED", None, False),
    ("relu_max_pool2d", "cupy", "cupy", "gpunet.ops.relu_pool:MAX_ON_DEVICE", None, False),
    ("relu_avg_pool2d", "numpy-ref", "numpy", "gpunet.ops.relu_pool:AVG_REFERENCE", None, False),
    ("relu_avg_pool2d", "numpy-fast", "numpy", "gpunet.ops.relu_pool:AVG_COMPILED", None, False),
    ("relu_avg_pool2d", "cupy", "cupy", "gpunet.ops.relu_pool:AVG_ON_DEVICE", None, False),
    ("conv2d_relu_pool2d", "numpy-ref", "numpy", "gpunet.ops.conv_relu_pool:REFERENCE", None, False),
    ("conv2d_relu_pool2d", "numpy-fast", "numpy", "gpunet.ops.conv_relu_pool:COMPILED", None, False),
    ("conv2d_relu_pool2d", "cupy", "cupy", "gpunet.ops.conv_relu_pool:ON_DEVICE", None, False),
    ("recurrent", "numpy-ref", "numpy", "gpunet.ops.recurrent:REFERENCE_LOOP", None, False),
    ("recurrent", "numpy-fast", "numpy", "gpunet.ops.recurrent:COMPILED_LOOP", None, False),
    ("recurrent", "cupy", "cupy", "gpunet.ops.recurrent:CUPY_LOOP", None, False),
    ("recurrent", "raw", "cupy", "gpunet.ops.recurrent:RAW_LOOP", RAW_PROBE, False),
    ("recurrent", "numba", "cupy", "gpunet.ops.recurrent:NUMBA_LOOP", NUMBA_PROBE, False),
    ("recurrent_inference", "numpy-ref", "numpy", "gpunet.ops.recurrent:REFERENCE_INFERENCE", None, False),
    ("recurrent_inference", "numpy-fast", "numpy", "gpunet.ops.recurrent:COMPILED_INFERENCE", None, False),
    ("recurrent_inference", "cupy", "cupy", "gpunet.ops.recurrent:CUPY_INFERENCE", None, False),
    ("recurrent_inference", "raw", "cupy", f"{RAW}:SEQUENCE_INFERENCE", RAW_PROBE, False),
    ("recurrent_inference", "numba", "cupy", "gpunet.ops.recurrent:NUMBA_INFERENCE", NUMBA_PROBE, False),
]
#: The fused training-step ops (kernels/fused.cu, numba_fused): references in gpunet.ops.fused.
FUSED_OPS = {"sgd_step": "sgd_step", "relu": "RELU_REFERENCE", "cross_entropy": "CROSS_ENTROPY_REFERENCE"}
for _op, _ref in FUSED_OPS.items():
    TABLE += [(_op, "numpy-ref", "numpy", f"gpunet.ops.fused:{_ref}", None, False),
              (_op, "cupy", "cupy", f"gpunet.ops.fused:{_ref}", None, False),
              (_op, "raw", "cupy", f"{RAW}:launcher", RAW_PROBE, True),
              (_op, "numba", "cupy", "gpunet.cuda.numba_fused:launcher", NUMBA_PROBE, True)]
TABLE.append(("relu", "numpy-fast", "numpy", "gpunet.ops.relu_cpu:RELU_COMPILED", None, False))
TABLE.append(("sgd_step", "numpy-fast", "numpy", "gpunet.ops.sgd_cpu:sgd_step", None, False))
TABLE.append(("cross_entropy", "numpy-fast", "numpy", "gpunet.ops.xent_cpu:COMPILED", None, False))

for _row in TABLE:
    _op, _name, _device, _target, _probe, _table = _row
    registry.register(_op, _name, _target, device=_device, probe=_probe, table=_table)
