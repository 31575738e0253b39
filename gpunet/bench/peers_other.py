"""Chainer and DeZero versions of the workloads (optional: used only when importable).

Both run on NumPy (CPU). Workloads without an equivalent in a framework (DeZero has no GRU and
neither exposes a fused cell step) return ``None`` and are reported as not comparable.
"""

from __future__ import annotations

import importlib
from typing import Any

from gpunet.bench.cases import Case
from gpunet.bench.workloads import LENET, LR, MLP, RECURRENT, make_inputs

PEERS = ("chainer", "dezero")
RECURRENT_NAMES = ("rnn", "lstm", "gru")


def available(peer: str) -> tuple[bool, str]:
    """``(True, version)`` when ``peer`` imports, else ``(False, why)``."""
    try:
        module = importlib.import_module(peer)
    except Exception as exc:  # ImportError, or an install broken underneath
        return False, f"not importable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return True, str(getattr(module, "__version__", "unknown"))


def _train(model: Any, optimizer: Any, loss_fn: Any) -> Any:
    optimizer.setup(model)

    def step() -> object:
        loss = loss_fn()
        model.cleargrads()
        loss.backward()
        optimizer.update()
        return loss

    return step


def _chainer_model(name: str) -> Any:
    import chainer
    import chainer.functions as F
    import chainer.links as L

    if name == "mlp":
        sizes = MLP["sizes"]
        layers = [L.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
        return chainer.Sequential(layers[0], F.relu, layers[1], F.relu, layers[2])
    if name == "lenet":
        class LeNet(chainer.Chain):
            def __init__(self) -> None:
                super().__init__()
                with self.init_scope():
                    self.conv1, self.conv2 = L.Convolution2D(LENET["channels"], 6, 5), L.Convolution2D(6, 16, 5)
                    self.fc1, self.fc2 = L.Linear(400, 120), L.Linear(120, 84)
                    self.fc3 = L.Linear(84, LENET["classes"])

            def forward(self, x: Any) -> Any:
                h = F.max_pooling_2d(F.relu(self.conv1(x)), 2)
                h = F.max_pooling_2d(F.relu(self.conv2(h)), 2)
                return self.fc3(F.relu(self.fc2(F.relu(self.fc1(h)))))

        return LeNet()
    r = RECURRENT
    layer = {"rnn": L.NStepRNNTanh, "lstm": L.NStepLSTM, "gru": L.NStepGRU}[name]

    class SequenceClassifier(chainer.Chain):
        def __init__(self) -> None:
            super().__init__()
            with self.init_scope():
                self.rnn = layer(r["layers"], r["input"], r["hidden"], 0.0)
                self.head = L.Linear(r["hidden"], r["classes"])

        def forward(self, xs: list[Any]) -> Any:
            out = self.rnn(None, None, xs) if name == "lstm" else self.rnn(None, xs)
            return self.head(out[0][-1])

    return SequenceClassifier()


def _chainer(name: str, seed: int) -> Case | None:
    import chainer
    import chainer.functions as F

    data = make_inputs(name, seed)
    if name == "conv2d":
        x, w = chainer.Variable(data["x"]), chainer.Variable(data["w"])

        def conv_step() -> object:
            x.cleargrad()
            w.cleargrad()
            y = F.convolution_2d(x, w)
            y.grad = data["gy"]
            y.backward()
            return y

        return Case(conv_step)
    if name.endswith("_step"):
        return None
    x, t = data["x"], data["t"]
    if name in RECURRENT_NAMES:
        x = [x[:, b].copy() for b in range(x.shape[1])]  # NStep links take one (T, I) array per sequence
    model = _chainer_model(name)
    return Case(_train(model, chainer.optimizers.SGD(lr=LR), lambda: F.softmax_cross_entropy(model(x), t)))


def _dezero_model(name: str) -> Any:
    import dezero
    import dezero.functions as F
    import dezero.layers as L

    if name == "mlp":
        return dezero.models.MLP(MLP["sizes"][1:], activation=F.relu)
    if name == "lenet":
        class LeNet(dezero.Model):
            def __init__(self) -> None:
                super().__init__()
                self.conv1 = L.Conv2d(6, 5, in_channels=LENET["channels"])
                self.conv2 = L.Conv2d(16, 5, in_channels=6)
                self.fc1, self.fc2 = L.Linear(120, in_size=400), L.Linear(84, in_size=120)
                self.fc3 = L.Linear(LENET["classes"], in_size=84)

            def forward(self, x: Any) -> Any:
                h = F.pooling(F.relu(self.conv1(x)), 2, 2)
                h = F.pooling(F.relu(self.conv2(h)), 2, 2)
                h = F.reshape(h, (h.shape[0], -1))
                return self.fc3(F.relu(self.fc2(F.relu(self.fc1(h)))))

        return LeNet()
    r = RECURRENT
    layer = {"rnn": L.RNN, "lstm": L.LSTM}[name]

    class SequenceClassifier(dezero.Model):
        def __init__(self) -> None:
            super().__init__()
            # sizes inferred on first call: DeZero 0.0.13's RNN(in_size=...) gives h2h the wrong shape
            self.l0, self.l1 = layer(r["hidden"]), layer(r["hidden"])
            self.head = L.Linear(r["classes"], in_size=r["hidden"])

        def forward(self, x: Any) -> Any:
            self.l0.reset_state()
            self.l1.reset_state()
            for t in range(len(x)):
                h = self.l1(self.l0(x[t]))
            return self.head(h)

    return SequenceClassifier()


def _dezero(name: str, seed: int) -> Case | None:
    import dezero
    import dezero.functions as F

    data = make_inputs(name, seed)
    if name == "conv2d":
        x, w = dezero.Variable(data["x"]), dezero.Variable(data["w"])

        def conv_step() -> object:
            x.cleargrad()
            w.cleargrad()
            y = F.conv2d(x, w)
            y.grad = dezero.Variable(data["gy"])
            y.backward()
            return y

        return Case(conv_step)
    if name.endswith("_step") or name == "gru":
        return None
    model = _dezero_model(name)
    x, t = data["x"], data["t"]
    return Case(_train(model, dezero.optimizers.SGD(lr=LR), lambda: F.softmax_cross_entropy(model(x), t)))


def build(peer: str, name: str, seed: int = 0) -> Case | None:
    """``peer``'s step for workload ``name`` on the CPU, or ``None`` when it has no equivalent."""
    ok, version = available(peer)
    if not ok:
        raise ImportError(f"{peer} is {version}")
    case = (_chainer if peer == "chainer" else _dezero)(name, seed)
    if case is not None:
        case.info = {"implementation": peer, "version": version, "device": "cpu"}
    return case
