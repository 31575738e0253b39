"""The generated dna dataset: format, determinism, and labels that depend on letter order."""

from __future__ import annotations

import numpy
import pytest

from gpunet.data import dna, load_dataset


@pytest.fixture(scope="module")
def split() -> object:
    return dna.load(seed=0, n_train=600, n_test=200)


def test_format_and_balance(split: object) -> None:
    tokens, lengths, labels = split.train.arrays
    assert tokens.shape == (600, dna.MAX_LENGTH) and tokens.dtype == numpy.int64
    assert lengths.dtype == labels.dtype == numpy.int64
    assert lengths.min() >= dna.MIN_LENGTH and lengths.max() <= dna.MAX_LENGTH
    assert len(split.test) == 200 and labels.mean() == 0.5 and split.test.arrays[2].mean() == 0.5
    running = numpy.arange(dna.MAX_LENGTH)[None, :] < lengths[:, None]
    assert (tokens[running] >= 1).all() and (tokens[running] < dna.VOCAB_SIZE).all()
    assert (tokens[~running] == dna.PAD).all()
    assert split.info["vocab_size"] == dna.VOCAB_SIZE and split.info["padding_idx"] == dna.PAD


def test_deterministic_and_seeded() -> None:
    a, b, c = (dna.generate(50, seed=s) for s in (3, 3, 4))
    for x, y in zip(a, b):
        numpy.testing.assert_array_equal(x, y)
    assert not numpy.array_equal(a[0], c[0])
    numpy.testing.assert_array_equal(load_dataset("dna", seed=0, n_train=60, n_test=20).test.arrays[0],
                                     dna.load(seed=0, n_train=60, n_test=20).test.arrays[0])


def test_labels_mean_motif_present_and_negatives_hold_a_decoy(split: object) -> None:
    motif = dna.encode(dna.MOTIF)
    shuffles, near = (numpy.stack([dna.encode(s) for s in group]) for group in dna.decoys())
    kinds = []
    for ids, length, label in zip(*split.train.arrays):
        seq = ids[:length]
        assert dna.contains(seq, motif) == bool(label)
        if not label:
            windows = numpy.lib.stride_tricks.sliding_window_view(seq, len(motif))
            is_shuffle = (windows[:, None, :] == shuffles[None]).all(axis=2).any()
            is_near = (windows[:, None, :] == near[None]).all(axis=2).any()
            assert is_shuffle or is_near
            kinds.append(is_shuffle)
    assert 0.35 < numpy.mean(kinds) < 0.8  # about half the negatives carry a same-letters decoy


def test_decoys_share_the_motifs_letters_or_miss_by_one() -> None:
    shuffles, near = dna.decoys()
    assert dna.MOTIF not in shuffles + near
    assert all(sorted(s) == sorted(dna.MOTIF) for s in shuffles)
    assert all(sum(a != b for a, b in zip(s, dna.MOTIF)) == 1 for s in near)
    assert dna.decode(dna.encode("GATTACA")) == "GATTACA"


def test_letter_counts_alone_do_not_separate_the_classes(split: object) -> None:
    """A nearest-class-mean classifier on letter frequencies stays near chance."""
    def freqs(arrays: tuple) -> numpy.ndarray:
        tokens, lengths, _ = arrays
        counts = numpy.stack([(tokens == k).sum(axis=1) for k in range(1, dna.VOCAB_SIZE)], axis=1)
        return counts / lengths[:, None]

    x, y = freqs(split.train.arrays), split.train.arrays[2]
    means = numpy.stack([x[y == k].mean(axis=0) for k in (0, 1)])
    xt, yt = freqs(split.test.arrays), split.test.arrays[2]
    pred = ((xt[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (pred == yt).mean() < 0.62
