"""ArrayDataset, seeded DataLoader, splits and the generated datasets."""

from __future__ import annotations

import numpy as np
import pytest

from gpunet.data import ArrayDataset, DataLoader, credit, load_dataset, train_test_split


def test_batches_cover_the_dataset_once():
    ds = ArrayDataset(np.arange(10)[:, None], np.arange(10))
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=3)
    seen = np.concatenate([b[1].numpy() for b in loader.iterate(0)])
    assert len(loader) == 3 and sorted(seen) == list(range(10))
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2


def test_shuffle_is_seeded_per_epoch_and_resumable():
    ds = ArrayDataset(np.arange(20))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=1)
    first = [b[0].numpy() for b in loader.iterate(0)]
    again = [b[0].numpy() for b in DataLoader(ds, batch_size=5, shuffle=True, seed=1).iterate(0)]
    assert all((a == b).all() for a, b in zip(first, again))
    assert not np.array_equal(loader.order(0), loader.order(1))
    resumed = [b[0].numpy() for b in loader.iterate(0, start_batch=2)]
    assert all((a == b).all() for a, b in zip(first[2:], resumed))


def test_dataset_validation():
    with pytest.raises(ValueError, match="one length"):
        ArrayDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="DataLoader: batch_size must be an integer >= 1, got 0"):
        DataLoader(ArrayDataset(np.zeros(3)), batch_size=0)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")


def test_stratified_split_keeps_label_proportions():
    y = np.array([0] * 80 + [1] * 20)
    train, test = train_test_split((np.arange(100), y), 0.25, seed=0, stratify=y)
    assert len(test) == 25 and test.arrays[1].sum() == 5


def test_credit_is_deterministic_two_feature_and_nearly_linear():
    x1, y1 = credit.generate(500, seed=0)
    x2, y2 = credit.generate(500, seed=0)
    np.testing.assert_array_equal(x1, x2)
    assert x1.shape == (500, 2) and set(np.unique(y1)) == {0, 1}
    split = load_dataset("credit")
    assert split.train.arrays[0].dtype == np.float32 and split.train.arrays[1].shape[1] == 1
    assert abs(split.train.arrays[0].mean()) < 0.05  # standardised


def test_device_data_option_is_checked_and_numpy_batches_are_unchanged():
    with pytest.raises(TypeError, match=r"^DataLoader: device_data must be True, False or None \(when it fits\), "
                                        r"got 'yes' \(str\)$"):
        DataLoader(ArrayDataset(np.zeros(3)), device_data="yes")
    ds = ArrayDataset(np.arange(10)[:, None], np.arange(10))
    on, off = (DataLoader(ds, batch_size=4, shuffle=True, seed=2, device_data=flag) for flag in (True, False))
    assert all(np.array_equal(a.numpy(), b.numpy()) for x, y in zip(on.iterate(0), off.iterate(0))
               for a, b in zip(x, y))  # on NumPy there is no device: the host batches either way
