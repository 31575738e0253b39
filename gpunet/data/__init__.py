"""Datasets (all embedded or generated: nothing is downloaded) and the DataLoader."""

from __future__ import annotations

import importlib
from typing import Any

from gpunet.data.collate import CollateError, default_collate
from gpunet.data.dataset import ArrayDataset, Dataset, Split, TensorDataset, train_test_split
from gpunet.data.loader import DataLoader, get_worker_info

# name -> "module:function"; each returns a Split. Loaded lazily (optional extras).
DATASETS = {
    "credit": "gpunet.data.credit:load",
    "xor": "gpunet.data.xor:load",
    "digits": "gpunet.data.digits:load",
    "mnist": "gpunet.data.mnist:load",
    "dna": "gpunet.data.dna:load",
}


def load_dataset(name: str, seed: int = 0, **options: Any) -> Split:
    """Load dataset ``name`` (see ``DATASETS``) with a fixed split seed."""
    if name not in DATASETS:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    module_name, func_name = DATASETS[name].split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    return loader(seed=seed, **options)


__all__ = ["DATASETS", "ArrayDataset", "CollateError", "DataLoader", "Dataset", "Split", "TensorDataset",
           "default_collate", "get_worker_info", "load_dataset", "train_test_split"]
