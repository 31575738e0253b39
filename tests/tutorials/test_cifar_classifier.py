"""Tutorial port: the CIFAR-10 style classifier (3-channel images, Conv2d -> BatchNorm2d -> ReLU ->
MaxPool2d twice, Dropout, Linear, CrossEntropyLoss, SGD with momentum), written the way a PyTorch
user writes it, on small synthetic images (no download): train()/eval() switch BatchNorm and
Dropout, the accuracy loop is PyTorch's, and with shared weights the losses follow PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.functional as F
import gpunet.nn as nn
import gpunet.optim as optim
from gpunet.data import DataLoader, TensorDataset

CLASSES = ("red-blob", "green-stripe", "blue-corner", "grey-ring")


def make_images(n, seed):
    """``(n, 3, 12, 12)`` float32 images: each class a colour and a shape, under noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), size=n)
    images = rng.normal(0.0, 0.6, size=(n, 3, 12, 12)).astype(np.float32)
    yy, xx = np.mgrid[:12, :12]
    masks = [((yy - 6) ** 2 + (xx - 6) ** 2 < 9), (xx % 4 < 2), (yy + xx < 8),
             np.abs(np.hypot(yy - 6, xx - 6) - 4) < 1]
    colours = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.6, 0.6, 0.6)]
    for i, k in enumerate(labels):
        shift = rng.integers(-1, 2, size=2)
        mask = np.roll(masks[k], tuple(shift), axis=(0, 1))
        for c in range(3):
            images[i, c][mask] += 1.5 * colours[k][c]
    return images, labels


class Net(nn.Module):
    def __init__(self, p_drop=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(p_drop)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, len(CLASSES))

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = gpunet.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(net, loader):
    net.eval()
    correct = total = 0
    with gpunet.no_grad():
        for images, labels in loader:
            outputs = net(images)
            _, predicted = outputs.max(1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return correct / total


def test_cifar_style_classifier_learns_and_switches_modes():
    gpunet.manual_seed(0)
    x, y = make_images(320, 0)
    xt, yt = make_images(160, 1)
    trainloader = DataLoader(TensorDataset(gpunet.tensor(x), gpunet.tensor(y)), batch_size=32, shuffle=True)
    testloader = DataLoader(TensorDataset(gpunet.tensor(xt), gpunet.tensor(yt)), batch_size=64)
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    chance = evaluate(net, testloader)
    epoch_loss = []
    for _epoch in range(4):
        net.train()
        running_loss = 0.0
        for inputs, labels in trainloader:
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        epoch_loss.append(running_loss / len(trainloader))
    assert epoch_loss[-1] < 0.5 * epoch_loss[0]
    accuracy = evaluate(net, testloader)
    assert accuracy > 0.8 and accuracy > chance + 0.3  # chance is 1/4
    assert int(net.bn1.num_batches_tracked) == 4 * len(trainloader)

    batch = gpunet.tensor(xt[:16])
    net.eval()
    with gpunet.no_grad():
        a, b = net(batch).numpy(), net(batch).numpy()
    np.testing.assert_array_equal(a, b)  # eval: running stats, no dropout
    net.train()
    with gpunet.no_grad():
        c, d = net(batch).numpy(), net(batch).numpy()
    assert not np.array_equal(c, d)  # train: a new dropout mask each call
    assert not np.allclose(c, a)


def test_cifar_style_classifier_matches_torch_for_a_few_steps(to_torch):
    torch = pytest.importorskip("torch")
    gpunet.manual_seed(3)
    net = Net(p_drop=0.0).double()  # dropout masks are not shared between the libraries

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(8)
            self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
            self.bn2 = torch.nn.BatchNorm2d(16)
            self.pool = torch.nn.MaxPool2d(2, 2)
            self.dropout = torch.nn.Dropout(0.0)
            self.fc1 = torch.nn.Linear(16 * 3 * 3, 32)
            self.fc2 = torch.nn.Linear(32, len(CLASSES))

        def forward(self, x):
            x = self.pool(torch.relu(self.bn1(self.conv1(x))))
            x = self.pool(torch.relu(self.bn2(self.conv2(x))))
            x = torch.flatten(x, 1)
            return self.fc2(self.dropout(torch.relu(self.fc1(x))))

    tnet = to_torch(net, TorchNet().double())
    x, y = make_images(64, 4)
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.05, momentum=0.9)
    ours, theirs = [], []
    net.train()
    tnet.train()
    for step in range(4):
        xb, yb = x[16 * step:16 * (step + 1)].astype(np.float64), y[16 * step:16 * (step + 1)]
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(net(gpunet.tensor(xb, dtype=gpunet.float64)), gpunet.tensor(yb))
        loss.backward()
        opt.step()
        ours.append(loss.item())
        topt.zero_grad()
        tloss = torch.nn.CrossEntropyLoss()(tnet(torch.tensor(xb)), torch.tensor(yb))
        tloss.backward()
        topt.step()
        theirs.append(tloss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    net.eval()
    tnet.eval()
    with gpunet.no_grad(), torch.no_grad():
        np.testing.assert_allclose(net(gpunet.tensor(x, dtype=gpunet.float64)).numpy(),
                                   tnet(torch.tensor(x.astype(np.float64))).numpy(), atol=1e-8)
    np.testing.assert_allclose(np.asarray(net.state_dict()["bn2.running_var"]),
                               tnet.state_dict()["bn2.running_var"].numpy(), rtol=1e-10)
