"""PyTorch versions of the benchmark workloads (optional: only when ``torch`` is importable).

Same architectures, shapes, data, loss and optimizer as gpunet's cases; eager mode, float32.
The cell-step kernels are written as the same elementwise formulas with autograd for the
backward (PyTorch has no public fused step without the GEMMs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpunet.bench.cases import Case
from gpunet.bench.timing import no_sync
from gpunet.bench.workloads import LENET, LR, MLP, RECURRENT, get_workload, make_inputs

NAME = "torch"


def available() -> tuple[bool, str]:
    """``(True, version)`` when PyTorch imports, else ``(False, why)``."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install underneath
        return False, f"not importable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return True, str(torch.__version__)


def _model(name: str) -> Any:
    from torch import nn

    if name == "lenet":
        class LeNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(LENET["channels"], 6, 5), nn.Conv2d(6, 16, 5)
                self.fc1, self.fc2 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, LENET["classes"])

            def forward(self, x: Any) -> Any:
                f = nn.functional
                x = f.max_pool2d(f.relu(self.conv1(x)), 2)
                x = f.max_pool2d(f.relu(self.conv2(x)), 2).flatten(1)
                return self.fc3(f.relu(self.fc2(f.relu(self.fc1(x)))))

        return LeNet()
    if name == "mlp":
        sizes, layers = MLP["sizes"], []
        for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if k < len(sizes) - 2 else [])
        return nn.Sequential(*layers)
    r = RECURRENT
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[name]

    class SequenceClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = layer(r["input"], r["hidden"], num_layers=r["layers"])
            self.head = nn.Linear(r["hidden"], r["classes"])

        def forward(self, x: Any) -> Any:
            _, state = self.rnn(x)
            h_n = state[0] if name == "lstm" else state
            return self.head(h_n[-1])

    return SequenceClassifier()


def _cell(mode: str, a: dict[str, Any]) -> Callable[[], object]:
    import torch

    hidden = a["h_prev"].shape[1]
    m = a["mask"][:, None]

    def rnn() -> object:
        h = m * torch.tanh(a["xg"] + a["hg"] + a["b_hh"]) + (1 - m) * a["h_prev"]
        return torch.autograd.grad(h, (a["xg"], a["hg"], a["h_prev"]), a["dh"])

    def lstm() -> object:
        pre = a["xg"] + a["hg"] + a["b_hh"]
        i, f, g, o = pre.split(hidden, dim=1)
        c_new = torch.sigmoid(f) * a["c_prev"] + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        h = m * h_new + (1 - m) * a["h_prev"]
        c = m * c_new + (1 - m) * a["c_prev"]
        return torch.autograd.grad((h, c), (a["xg"], a["hg"], a["h_prev"], a["c_prev"]), (a["dh"], a["dc"]))

    def gru() -> object:
        hb = a["hg"] + a["b_hh"]
        xr, xz, xn = a["xg"].split(hidden, dim=1)
        hr, hz, hn = hb.split(hidden, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = m * ((1 - z) * n + z * a["h_prev"]) + (1 - m) * a["h_prev"]
        return torch.autograd.grad(h, (a["xg"], a["hg"], a["h_prev"]), a["dh"])

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[mode]


def build(name: str, threads: int, device: str = "cpu", seed: int = 0) -> Case:
    """PyTorch's step for workload ``name`` with ``threads`` intra-op threads on ``device``."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    workload = get_workload(name)
    arrays = {k: torch.from_numpy(v).to(device) for k, v in make_inputs(name, seed).items()}
    if name == "conv2d":
        x, w = arrays["x"].requires_grad_(), arrays["w"].requires_grad_()

        def step() -> object:
            y = torch.nn.functional.conv2d(x, w)
            return torch.autograd.grad(y, (x, w), arrays["gy"])
    elif workload.kind == "kernel":
        for key in ("xg", "hg", "h_prev", "c_prev"):
            arrays[key].requires_grad_()
        step = _cell(name.removesuffix("_step"), arrays)
    else:
        model = _model(name).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        x, t = arrays["x"], arrays["t"]

        def step() -> object:
            loss = torch.nn.functional.cross_entropy(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

    sync = torch.cuda.synchronize if device == "cuda" else no_sync
    return Case(step, sync, {"implementation": NAME, "version": str(torch.__version__), "device": device,
                             "threads": torch.get_num_threads()})
