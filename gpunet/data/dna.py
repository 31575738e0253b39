"""``dna``: does a DNA sequence contain the promoter-like motif ``TATAAT``? (generated, seeded)

Each sequence is a uniform random string over A, C, G, T of length 20..60 into which one 6-letter
segment is planted at a random position:

- positives (label 1): the motif ``TATAAT`` itself;
- negatives (label 0): a *decoy* with the same letters in another order (``ATATAT``, ``TTAAAT``,
  ...: identical letter counts) for half of them, and a near-miss that differs from the motif in
  one position for the other half.

Negatives are redrawn until the motif occurs nowhere in them; positives may contain it more than
once. Because a decoy has exactly the motif's letter composition, counting letters cannot tell
the classes apart: a model has to recognise the letters' order. Classes are balanced.

Token ids: ``0`` is padding, then ``A=1, C=2, G=3, T=4``. ``load`` returns a :class:`Split` whose
datasets hold ``tokens`` (N, 60) int64 (batch first, padded after each sequence's end), ``lengths``
(N,) int64 and ``labels`` (N,) int64, in that order.
"""

from __future__ import annotations

import itertools

import numpy

from gpunet.data.dataset import Split, train_test_split

ALPHABET = "ACGT"
PAD = 0
MOTIF = "TATAAT"
MIN_LENGTH, MAX_LENGTH = 20, 60
VOCAB_SIZE = len(ALPHABET) + 1


def encode(text: str) -> numpy.ndarray:
    """Token ids of a string over A, C, G, T."""
    return numpy.array([ALPHABET.index(ch) + 1 for ch in text], dtype=numpy.int64)


def decode(ids: numpy.ndarray) -> str:
    """The letters of token ids (padding dropped)."""
    return "".join(ALPHABET[i - 1] for i in ids if i != PAD)


def decoys(motif: str = MOTIF) -> tuple[list[str], list[str]]:
    """``(shuffles, near_misses)``: the motif's other letter orders and its one-letter mutants."""
    shuffles = sorted({"".join(p) for p in itertools.permutations(motif)} - {motif})
    near = sorted({motif[:k] + ch + motif[k + 1:] for k in range(len(motif)) for ch in ALPHABET} - {motif})
    return shuffles, near


def contains(ids: numpy.ndarray, motif: numpy.ndarray) -> bool:
    """Whether ``motif`` occurs as a contiguous run in ``ids``."""
    if len(ids) < len(motif):
        return False
    windows = numpy.lib.stride_tricks.sliding_window_view(ids, len(motif))
    return bool((windows == motif).all(axis=1).any())


def generate(n: int, seed: int = 0, motif: str = MOTIF) -> tuple[numpy.ndarray, ...]:
    """``(tokens, lengths, labels)`` for ``n`` sequences (half positive), seeded."""
    rng = numpy.random.default_rng(seed)
    target = encode(motif)
    shuffles, near = decoys(motif)
    tokens = numpy.full((n, MAX_LENGTH), PAD, dtype=numpy.int64)
    lengths = rng.integers(MIN_LENGTH, MAX_LENGTH + 1, size=n)
    labels = numpy.arange(n) % 2
    for row in range(n):
        length = int(lengths[row])
        while True:
            seq = rng.integers(1, VOCAB_SIZE, size=length)
            if labels[row]:
                plant = target
            else:
                pool = shuffles if rng.random() < 0.5 else near
                plant = encode(pool[rng.integers(len(pool))])
            start = rng.integers(0, length - len(target) + 1)
            seq[start:start + len(target)] = plant
            if labels[row] or not contains(seq, target):
                break
        tokens[row, :length] = seq
    order = rng.permutation(n)
    return tokens[order], lengths[order].astype(numpy.int64), labels[order].astype(numpy.int64)


def load(seed: int = 0, n_train: int = 4000, n_test: int = 1000) -> Split:
    """The dna split: ``n_train`` + ``n_test`` sequences, stratified, fixed ``seed``."""
    tokens, lengths, labels = generate(n_train + n_test, seed=seed)
    train, test = train_test_split((tokens, lengths, labels), n_test / (n_train + n_test), seed,
                                   stratify=labels)
    info = {"name": "dna", "num_classes": 2, "input_shape": (MAX_LENGTH,), "vocab_size": VOCAB_SIZE,
            "padding_idx": PAD, "max_length": MAX_LENGTH, "motif": MOTIF}
    return Split(train, test, info)
