"""``gpunet bench [WORKLOAD]...``: time training steps and hot ops, optionally against peers."""

from __future__ import annotations

import click

from gpunet import backend, config, settings
from gpunet.cli.options import STDOUT, check_output

DEFAULT_REPEAT, DEFAULT_WARMUP = 20, 3


def _command_line(workloads: tuple[str, ...], options: dict[str, object]) -> str:
    """The canonical command line of a run (recorded in the JSON)."""
    parts = ["gpunet", "bench", *workloads]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif isinstance(value, (tuple, list)):
            parts += [item for v in value for item in (flag, str(v))]
        elif value not in (None, False):
            parts += [flag, str(value)]
    return " ".join(parts)


def _list_workloads() -> None:
    from gpunet.bench.workloads import WORKLOADS

    for w in WORKLOADS.values():
        click.echo(f"{w.name:<10} {w.kind:<7} {w.flops / 1e6:>9,.2f} MFLOP/step  {w.description}")


@click.command()
@click.argument("workloads", nargs=-1, metavar="[WORKLOAD]...")
@click.option("--backend", "backend_name", type=click.Choice(backend.BACKENDS), default=None,
              help="Array backend [default: $GPUNET_BACKEND or auto].")
@click.option("--kernels", multiple=True, type=click.Choice(config.KERNEL_CHOICES),
              help="GPU implementation(s) of the hot ops; repeat to compare side by side "
                   "[default: $GPUNET_KERNELS or auto].")
@click.option("--repeat", type=click.IntRange(min=1), default=DEFAULT_REPEAT, show_default=True,
              help="Timed samples per implementation.")
@click.option("--warmup", type=click.IntRange(min=0), default=DEFAULT_WARMUP, show_default=True,
              help="Untimed steps first.")
@click.option("--peers", is_flag=True, help="Also time PyTorch (and Chainer/DeZero when importable); "
                                            "prints the ratio gpunet/peer.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for BLAS and the numba kernels (and the peers) [default: the cores this process may use].")
@click.option("--peer-threads", type=click.IntRange(min=1), default=None,
              help="PyTorch's intra-op threads, independent of NumPy's BLAS [default: the BLAS threads].")
@click.option("--cpu-time", is_flag=True,
              help="Also record the process CPU time per step (all threads; steadier on a busy "
                   "machine, comparable with --threads 1) and the CPU-time ratios.")
@click.option("--scaling", is_flag=True,
              help="Time every implementation at 1 thread and at --threads (default: every core this "
                   "process may use), interleaved, and print the 1 -> N speedups; on the CPU a "
                   "fixed compute-only loop is timed with them: its speedup is what this machine "
                   "gave at that time (the ceiling on a shared machine).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the full record (environment, samples, FLOPs, ratios) as JSON (- for standard output; "
                   "the table then goes to standard error).")
@click.option("--list", "list_only", is_flag=True, help="List the workloads with shapes and FLOPs, then exit.")
@click.option("--distributed", is_flag=True,
              help="Under `mpiexec -n N`: all-reduce bandwidth by message size, and the data-parallel training "
                   "step (mlp, lenet by default) per rank against one process, with the overlap fraction.")
@click.option("--bucket-cap-mb", type=click.FloatRange(min=0, min_open=True), default=25.0, show_default=True,
              help="With --distributed: DistributedDataParallel's bucket size.")
def bench(workloads: tuple[str, ...], backend_name: str | None, kernels: tuple[str, ...], repeat: int,
          warmup: int, peers: bool, threads: int | None, peer_threads: int | None, cpu_time: bool, scaling: bool,
          json_path: str | None, list_only: bool, distributed: bool, bucket_cap_mb: float) -> None:
    """Time WORKLOADs (default: all): training steps lenet, mlp, rnn, lstm, gru and the hot
    ops conv2d, rnn_step, lstm_step, gru_step (forward + backward). Prints the median and
    spread (ms per step), FLOPs per step and achieved GFLOP/s; with --peers the ratio
    gpunet/peer (above 1: gpunet is slower).

    \b
    Examples:
      gpunet bench --list
      gpunet bench lenet mlp rnn --peers --json bench/results/cpu.json
      gpunet bench conv2d lstm_step --backend cupy --kernels raw --kernels numba --kernels cupy
      gpunet bench mlp --repeat 50 --warmup 5 --threads 1 --peers
      gpunet bench lenet rnn --peers --threads 1 --cpu-time --repeat 60 --warmup 5
      gpunet bench rnn --peers --peer-threads 2 --cpu-time
      gpunet bench lenet mlp lstm conv2d --scaling
      mpiexec -n 2 gpunet bench --distributed --threads 1
    """
    from gpunet.bench import report, runner
    from gpunet.bench.workloads import WORKLOADS

    if list_only:
        _list_workloads()
        return
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        raise click.BadParameter(f"unknown workload {unknown[0]!r}; expected one of {', '.join(WORKLOADS)}",
                                 param_hint="WORKLOAD")
    settings.env_choice("GPUNET_KERNELS", config.KERNEL_CHOICES)  # a typo there is an error, not ignored
    check_output(json_path, "--json", allow_stdout=True, makes_folders=True)  # before any timing
    backend.use(backend_name or backend.env_backend(), quiet=True)
    if distributed:
        _bench_distributed(workloads, repeat, warmup, threads, bucket_cap_mb, json_path)
        return
    opts = runner.Options(repeat=repeat, warmup=warmup, kernels=kernels or (config.kernels(),), peers=peers,
                          threads=threads, peer_threads=peer_threads, cpu_time=cpu_time, scaling=scaling,
                          strict=bool(workloads))
    command = _command_line(workloads, {"backend": backend_name, "kernels": kernels, "repeat": repeat,
                                        "warmup": warmup, "peers": peers, "threads": threads,
                                        "peer_threads": peer_threads, "cpu_time": cpu_time, "scaling": scaling,
                                        "json": json_path})
    record = runner.run(list(dict.fromkeys(workloads)), opts, progress=lambda line: click.echo(line, err=True),
                        command=command)
    _emit(report.format_table(record), record, json_path)


def _emit(table: str, record: dict[str, object], json_path: str | None) -> None:
    """The table on standard output, or on standard error when ``--json -`` puts the JSON there."""
    from gpunet.bench import report

    click.echo(table, err=json_path == STDOUT)
    if json_path == STDOUT:
        click.echo(report.to_json(record), nl=False)
    elif json_path:
        report.write_json(record, json_path)
        click.echo(f"wrote {json_path}", err=True)


def _bench_distributed(workloads: tuple[str, ...], repeat: int, warmup: int, threads: int | None,
                       bucket_cap_mb: float, json_path: str | None) -> None:
    from gpunet import distributed as dist
    from gpunet.bench import distributed as dbench
    from gpunet.bench.workloads import WORKLOADS
    from gpunet.cli.errors import _message
    from gpunet.training import blas_threads

    names = list(dict.fromkeys(workloads)) or ["mlp", "lenet"]
    not_train = [n for n in names if WORKLOADS[n].kind != "train"]
    if not_train:
        kind = WORKLOADS[not_train[0]].kind
        raise click.BadParameter(f"--distributed times training steps; {not_train[0]!r} is a {kind} workload",
                                 param_hint="WORKLOAD")
    dist.init()
    with dist.abort_on_error(describe=_message), blas_threads(threads):
        record = dbench.run(names, repeat, warmup, bucket_cap_mb, progress=lambda line: click.echo(line, err=True))
    if not dist.is_main_process():
        return
    record["command"] = "mpiexec -n {} gpunet bench --distributed {}".format(record["world_size"], " ".join(names))
    _emit(dbench.format_table(record), record, json_path)
