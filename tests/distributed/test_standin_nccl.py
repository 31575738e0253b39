"""The CuPy path under ``mpiexec -n 2`` on the strict CuPy stand-in: NCCL modelled over MPI, with
the stand-in refusing a collective not ordered after its buffer's writer and any touch of a
buffer before the compute stream waited for its reduction (``tests/standin/cupy/cuda``)."""

from __future__ import annotations

import json

import pytest

from .conftest import REPO, WORKER

pytestmark = pytest.mark.slow

STANDIN = {"GPUNET_STANDIN": "1", "NUMBA_ENABLE_CUDASIM": "1",
           "PYTHONPATH": f"{REPO / 'tests' / 'standin'}:{REPO}"}


def _steps(mpirun, tmp_path, **env):
    result, _ = mpirun(2, str(WORKER), "cupy_steps", str(tmp_path / "steps"), timeout=180, env={**STANDIN, **env})
    assert result.returncode == 0, result.stderr
    return [json.loads((tmp_path / f"steps.{r}.json").read_text()) for r in (0, 1)], result


def test_two_cupy_ranks_reduce_over_nccl_on_its_stream_and_step_like_one_process(mpirun, tmp_path):
    facts, _ = _steps(mpirun, tmp_path)
    for f in facts:
        assert f["reducer"] == "nccl" and f["device"] == "cupy" and f["buckets"] >= 3
        assert f["max_param_diff"] < 1e-6  # 3 momentum steps equal one process with the global batch
        assert f["reduces"] == 3 * f["buckets"]  # one ncclAllReduce per bucket and step
        assert len(f["nccl_streams"]) == 1 and f["nccl_streams"][0] != 0  # a dedicated stream, not the null one
        assert f["reduces_after_their_writer"]
        assert f["compute_waits_on_nccl"] == f["reduces"]  # the optimizer's stream waited for every bucket


def test_without_nccl_cupy_gradients_go_over_mpi_through_the_host_with_a_notice(mpirun, tmp_path):
    facts, result = _steps(mpirun, tmp_path, GPUNET_DIST_NCCL="0", GPUNET_QUIET="")
    for f in facts:
        assert f["reducer"] == "mpi-staged" and f["reduces"] == 0 and f["max_param_diff"] < 1e-6
    notice = ("gpunet: distributed: NCCL is not usable (GPUNET_DIST_NCCL=0); all-reducing CuPy gradients over MPI "
              "through host memory (slower)")
    assert result.stderr.count(notice) == 1, result.stderr  # once per job, from rank 0


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_lost_rank_ends_the_nccl_job_in_bounded_time(mpirun, how):
    # rank 1 leaves (or dies) at step 3; rank 0's bucket never completes: its watchdog aborts
    # NCCL and the job (15 s: a healthy collective can take seconds on a loaded CI machine)
    result, seconds = mpirun(2, str(WORKER), "fail", how, "cupy", timeout=120,
                             env={**STANDIN, "GPUNET_DIST_TIMEOUT": "15"})
    assert result.returncode != 0 and seconds < 60, result.stderr
    assert "reducer nccl" in result.stdout and "unreachable" not in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    if how == "exit":
        assert seconds >= 15  # rank 0 waited for its limit, not less
        lines = [line for line in result.stderr.splitlines() if line.startswith("gpunet: error:")]
        assert lines == ["gpunet: error: rank 0/2: NCCL all-reduce of gradient bucket 0 did not complete within "
                         "15 s; another rank has probably failed or stopped (GPUNET_DIST_TIMEOUT sets the limit)"], \
            result.stderr


def test_the_cli_trains_on_the_cupy_path_over_nccl_like_one_process(mpirun, tmp_path):
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"{n}.json"
        args = ["-m", "gpunet.cli", "train", "mlp", "--backend", "cupy", "--epochs", "2", "--threads", "1",
                "--json", str(out), *(["--distributed"] if n > 1 else [])]
        result, _ = mpirun(n, *args, timeout=240, env=STANDIN)
        assert result.returncode == 0, result.stderr
        runs[n] = json.loads(out.read_text())["history"], result.stderr
    assert "gradient all-reduce nccl" in runs[2][1] and "with cupy" in runs[2][1]
    for a, b in zip(runs[1][0], runs[2][0]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-5)  # sharded evaluation, reduced
        assert b["test_accuracy"] == a["test_accuracy"]
