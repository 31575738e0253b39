"""Data-parallel training over MPI (mpi4py) and NCCL (``cupy.cuda.nccl``): ChainerMN's design,
the collective model of Horovod and PyTorch DDP.

Start N processes with ``mpiexec -n N``; each calls :func:`init`, wraps its model in
:class:`DistributedDataParallel` and reads its shard through :class:`DistributedSampler`::

    from gpunet import distributed as dist
    dist.init()
    ddp = dist.DistributedDataParallel(model)        # broadcasts rank 0's weights
    loss = loss_fn(ddp(x), t); loss.backward()       # gradients averaged during backward
    ddp.finish(); optimizer.step()                   # finish() is a no-op when backward did it

NumPy gradients go over MPI (non-blocking ``Iallreduce``), CuPy gradients over NCCL on its own
stream (or over MPI through the host when NCCL is not usable); the host never waits for NCCL, a
watchdog thread aborts it (and the job) when a bucket is stuck. Inside :func:`agreed_interrupts`
Ctrl-C stops every rank after the same step. Nothing here imports mpi4py until :func:`init`.
"""

from gpunet.distributed.comm import (
    DistributedError,
    abort,
    abort_on_error,
    allreduce_sum,
    barrier,
    get_local_rank,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    is_main_process,
    mpi_available,
    select_device,
)
from gpunet.distributed.ddp import DistributedDataParallel, broadcast_parameters
from gpunet.distributed.interrupts import AgreedInterrupt, agreed_interrupts
from gpunet.distributed.sampler import DistributedSampler

__all__ = ["AgreedInterrupt", "DistributedDataParallel", "DistributedError", "DistributedSampler", "abort",
           "abort_on_error", "agreed_interrupts", "allreduce_sum", "barrier", "broadcast_parameters",
           "get_local_rank", "get_rank", "get_world_size", "init", "is_initialized", "is_main_process",
           "mpi_available", "select_device"]
