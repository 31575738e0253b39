"""``gpunet train`` on a cold numba cache says, before the first step, that it compiles once."""

from __future__ import annotations

import pytest

from gpunet.ops import conv2d_cpu, conv_relu_pool_cpu, kernel_cache


@pytest.mark.parametrize("filled", ["fused", "conv2d"])
def test_cold_follows_the_cache_indexes(monkeypatch, tmp_path, filled) -> None:
    """Warm once either conv kernel was cached (LeNet compiles only the fused one)."""
    files = {"fused": conv_relu_pool_cpu.forward_parts._cache._cache_file,
             "conv2d": conv2d_cpu.forward_parts._cache._cache_file}
    for name, cache_file in files.items():
        monkeypatch.setattr(cache_file, "_index_path", str(tmp_path / f"{name}.nbi"))
    assert kernel_cache.cold()
    (tmp_path / f"{filled}.nbi").write_bytes(b"")
    assert not kernel_cache.cold()


def test_train_says_it_compiles_on_a_cold_cache_and_not_otherwise(run_cli, monkeypatch) -> None:
    monkeypatch.delenv("GPUNET_QUIET", raising=False)  # the suite's default (other ranks' setting)
    monkeypatch.setattr(kernel_cache, "cold", lambda: True)
    outcome = run_cli("train", "linear", "--epochs", "1", "--backend", "numpy")
    assert outcome.code == 0, outcome
    assert kernel_cache.NOTICE in outcome.stderr
    quiet = run_cli("train", "linear", "--epochs", "1", "--backend", "numpy", "--quiet")
    assert kernel_cache.NOTICE not in quiet.stderr
    monkeypatch.setattr(kernel_cache, "cold", lambda: False)
    warm = run_cli("train", "linear", "--epochs", "1", "--backend", "numpy")
    assert warm.code == 0 and kernel_cache.NOTICE not in warm.stderr


def test_cold_cache_compiles_before_the_first_epoch_and_changes_nothing(run_cli, monkeypatch) -> None:
    """On a cold cache the run compiles the step's kernels (forward and backward) before epoch 1
    and says how long that took; the compile step keeps nothing, so the run trains exactly as a
    run on a warm cache."""
    monkeypatch.delenv("GPUNET_QUIET", raising=False)
    args = ("train", "lenet", "--epochs", "2", "--backend", "numpy", "--seed", "3")
    monkeypatch.setattr(kernel_cache, "cold", lambda: True)
    cold = run_cli(*args)
    monkeypatch.setattr(kernel_cache, "cold", lambda: False)
    warm = run_cli(*args)
    assert cold.code == warm.code == 0, (cold, warm)
    lines = cold.stderr.splitlines()
    compiled = next(i for i, line in enumerate(lines) if line.startswith("gpunet: compiled the CPU kernels in "))
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1/2  loss"))
    assert compiled < first_epoch and "compiled the CPU kernels" not in warm.stderr

    def epochs(out):
        return [line.split("(")[0] for line in out.stderr.splitlines() if line.startswith("epoch ") and "loss" in line
                and "%" not in line]

    assert epochs(cold) == epochs(warm) and len(epochs(warm)) == 2
    assert cold.stdout.split("(")[0] == warm.stdout.split("(")[0]
