"""``gpunet train`` on a cold numba cache says, before the first step, that it compiles once."""

from __future__ import annotations

from gpunet.ops import conv2d_cpu, kernel_cache


def test_cold_follows_the_cache_index(monkeypatch, tmp_path) -> None:
    cache_file = conv2d_cpu.forward_parts._cache._cache_file
    monkeypatch.setattr(cache_file, "_index_path", str(tmp_path / "missing.nbi"))
    assert kernel_cache.cold()
    (tmp_path / "missing.nbi").write_bytes(b"")
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
