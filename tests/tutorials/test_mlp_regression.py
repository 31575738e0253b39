"""Tutorial port: an MLP regression with Adam, a StepLR schedule and MSELoss, written the way a
PyTorch user writes it; it learns, and with shared initial weights it follows PyTorch's losses."""

from __future__ import annotations

import numpy as np
import pytest

import gpunet
import gpunet.nn as nn
import gpunet.optim as optim
from gpunet.data import DataLoader, TensorDataset


def make_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 3)).astype(np.float32)
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:2] ** 2 - x[:, 2:3] + 0.05 * rng.standard_normal((n, 1)))
    return x, y.astype(np.float32)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)


def test_mlp_regression_learns_with_adam_and_steplr():
    gpunet.manual_seed(0)
    x, y = make_data()
    loader = DataLoader(TensorDataset(gpunet.from_numpy(x), gpunet.from_numpy(y)), batch_size=32, shuffle=True)
    model = Regressor()
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    epoch_losses, lrs = [], []
    for _epoch in range(12):
        model.train()
        running = 0.0
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), targets)
            loss.backward()
            optimizer.step()
            running += loss.item() * inputs.size(0)
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        epoch_losses.append(running / len(loader.dataset))
    assert lrs[0] == 0.01 and lrs[5] == 0.005 and lrs[10] == 0.0025
    assert epoch_losses[-1] < 0.1 * epoch_losses[0]
    model.eval()
    with gpunet.no_grad():
        xt, yt = make_data(128, seed=1)
        test_mse = criterion(model(gpunet.tensor(xt)), gpunet.tensor(yt)).item()
    variance = float(np.var(yt))
    assert test_mse < 0.1 * variance  # explains over 90% of the variance on unseen points


def test_mlp_regression_matches_torch_for_a_few_steps(to_torch):
    torch = pytest.importorskip("torch")
    gpunet.manual_seed(1)
    x, y = make_data(64)
    model = Regressor().double()

    class TorchRegressor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                                           torch.nn.ReLU(), torch.nn.Linear(32, 1))

        def forward(self, x):
            return self.net(x)

    tmodel = to_torch(model, TorchRegressor().double())
    opt, topt = optim.Adam(model.parameters(), lr=0.02), torch.optim.Adam(tmodel.parameters(), lr=0.02)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    ours, theirs = [], []
    for step in range(6):
        batch = slice(16 * (step % 4), 16 * (step % 4 + 1))
        opt.zero_grad()
        inputs, targets = (gpunet.tensor(a[batch], dtype=gpunet.float64) for a in (x, y))
        loss = nn.MSELoss()(model(inputs), targets)
        loss.backward()
        opt.step()
        sched.step()
        ours.append(loss.item())
        topt.zero_grad()
        tloss = torch.nn.MSELoss()(tmodel(torch.tensor(x[batch], dtype=torch.float64)),
                                   torch.tensor(y[batch], dtype=torch.float64))
        tloss.backward()
        topt.step()
        tsched.step()
        theirs.append(tloss.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    assert opt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]
