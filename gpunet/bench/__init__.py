"""The benchmark harness behind ``gpunet bench`` (the only one: ``bench/`` holds docs and results).

``run(names, Options(...))`` times gpunet on the active backend (one or more kernel
implementations on CuPy) and, optionally, PyTorch/Chainer/DeZero on the same inputs;
``report.format_table`` and ``report.write_json`` present the record; ``schema.validate``
checks one (every file in ``bench/results/`` is such a record). Only the CLI imports this package.
"""

from gpunet.bench.runner import Options, available_peers, run
from gpunet.bench.schema import SCHEMA, validate
from gpunet.bench.timing import Timing, measure
from gpunet.bench.workloads import WORKLOADS, Workload, WorkloadUnavailable, get_workload, make_inputs

__all__ = ["SCHEMA", "WORKLOADS", "Options", "Timing", "Workload", "WorkloadUnavailable", "available_peers",
           "get_workload", "make_inputs", "measure", "run", "validate"]
