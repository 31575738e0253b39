"""Tutorial port: a character-level LSTM name classifier over padded batches (a Dataset of
variable-length names, a collate_fn with pad_sequence, pack_padded_sequence into nn.LSTM,
Embedding with padding_idx, CrossEntropyLoss), written the way a PyTorch user writes it."""

from __future__ import annotations

import string

import numpy as np
import pytest

import gpunet
import gpunet.nn as nn
from gpunet.data import DataLoader, Dataset
from gpunet.nn.utils.rnn import pack_padded_sequence, pad_sequence

LETTERS = string.ascii_lowercase
SUFFIXES = [("ov", "ev", "in"), ("ez", "es", "ao"), ("ski", "ak", "ek")]  # one "language" each
PAD = 0
N_LETTERS, N_CLASSES = len(LETTERS) + 1, len(SUFFIXES)


def make_names(n, seed):
    """Names are random letters with a language's suffix: only the end tells the class, so the
    model must read each name to its true last letter (packing, not padding, decides)."""
    rng = np.random.default_rng(seed)
    names, labels = [], []
    for _ in range(n):
        label = int(rng.integers(len(SUFFIXES)))
        stem = "".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 7))))
        names.append(stem + SUFFIXES[label][int(rng.integers(3))])
        labels.append(label)
    return names, labels


class NamesDataset(Dataset):
    def __init__(self, names, labels):
        self.names, self.labels = names, labels

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        ids = gpunet.tensor([LETTERS.index(c) + 1 for c in self.names[i]], dtype=gpunet.int64)
        return ids, self.labels[i]


def collate(batch):
    seqs, labels = zip(*batch)
    lengths = gpunet.tensor([len(s) for s in seqs], dtype=gpunet.int64)
    return pad_sequence(list(seqs), batch_first=True, padding_value=PAD), lengths, gpunet.tensor(labels)


class NameClassifier(nn.Module):
    def __init__(self, n_letters=N_LETTERS, emb=8, hidden=24, n_classes=N_CLASSES):
        super().__init__()
        self.embedding = nn.Embedding(n_letters, emb, padding_idx=PAD)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.embedding(x), lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.fc(h_n[-1])


def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with gpunet.no_grad():
        for x, lengths, y in loader:
            pred = model(x, lengths).argmax(dim=1)
            correct += (pred == y).sum().item()
            total += y.size(0)
    return correct / total


def test_lstm_name_classifier_learns_from_padded_packed_batches():
    gpunet.manual_seed(0)
    train = DataLoader(NamesDataset(*make_names(240, 0)), batch_size=16, shuffle=True, collate_fn=collate)
    test = DataLoader(NamesDataset(*make_names(90, 1)), batch_size=32, collate_fn=collate)
    model = NameClassifier()
    criterion = nn.CrossEntropyLoss()
    optimizer = gpunet.optim.Adam(model.parameters(), lr=0.02)
    before = accuracy(model, test)
    first = last = None
    for _epoch in range(8):
        model.train()
        total = 0.0
        for x, lengths, y in train:
            optimizer.zero_grad()
            loss = criterion(model(x, lengths), y)
            loss.backward()
            optimizer.step()
            total += loss.item()
        first = total if first is None else first
        last = total
    assert last < 0.4 * first
    after = accuracy(model, test)
    assert after > 0.8 and after > before + 0.3  # chance is 1/3
    assert np.all(model.embedding.weight.numpy()[PAD] == 0)  # padding_idx row gets no gradient


def test_lstm_name_classifier_matches_torch_for_a_few_steps(to_torch):
    torch = pytest.importorskip("torch")
    gpunet.manual_seed(2)
    model = NameClassifier().double()

    class TorchNameClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(len(LETTERS) + 1, 8, padding_idx=PAD)
            self.lstm = torch.nn.LSTM(8, 24, batch_first=True)
            self.fc = torch.nn.Linear(24, len(SUFFIXES))

        def forward(self, x, lengths):
            packed = torch.nn.utils.rnn.pack_padded_sequence(self.embedding(x), lengths, batch_first=True,
                                                             enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)
            return self.fc(h_n[-1])

    tmodel = to_torch(model, TorchNameClassifier().double())
    loader = DataLoader(NamesDataset(*make_names(48, 3)), batch_size=12, collate_fn=collate)
    opt = gpunet.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.5, momentum=0.9)
    ours, theirs = [], []
    for x, lengths, y in loader:
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x, lengths), y)
        loss.backward()
        opt.step()
        ours.append(loss.item())
        tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
        topt.zero_grad()
        tloss = torch.nn.CrossEntropyLoss()(tmodel(tx, torch.tensor(lengths.numpy())), ty)
        tloss.backward()
        topt.step()
        theirs.append(tloss.item())
    assert len(ours) == 4
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
