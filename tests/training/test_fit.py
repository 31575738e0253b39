"""fit() trains any Module from arrays, with callbacks stopping it."""

import numpy

from gpunet import nn, optim
from gpunet.training.callbacks import EarlyStopping
from gpunet.training.fit import fit


def _data(seed=0):
    rng = numpy.random.default_rng(seed)
    x = rng.normal(size=(200, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def test_fit_learns_classification():
    x, y = _data()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    hist = fit(model, optim.Adam(model.parameters(), lr=0.05), "cross_entropy", (x[:150], y[:150]),
               (x[150:], y[150:]), epochs=10)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_accuracy"] > 0.85


def test_fit_early_stopping_ends_run():
    x, y = _data()
    model = nn.Linear(4, 2)
    stop = EarlyStopping(monitor="train_loss", patience=0, min_delta=1e9)
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), "cross_entropy", (x, y), epochs=5, callbacks=[stop])
    assert len(hist) == 2 and stop.stopped_epoch == 2


def test_readme_fit_examples_run(capsys, monkeypatch, tmp_path):
    """Both examples of README's fit section, as shown (the second continues the first)."""
    from pathlib import Path

    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("### Training any model: `fit` and callbacks")[1].split("\n## ")[0]
    blocks = [part.split("```")[0] for part in section.split("```python")[1:]]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)  # the examples write best.npz, log.csv and run.npz
    scope: dict = {}
    exec(compile(blocks[0], "README-fit", "exec"), scope)
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) > 0.8
    assert (tmp_path / "best.npz").exists() and (tmp_path / "log.csv").exists()
    exec(compile(blocks[1], "README-trainer", "exec"), scope)
    assert capsys.readouterr().out.strip() == "['epoch', 'seconds', 'test_loss', 'train_loss']"
    assert (tmp_path / "run.npz").exists()


def test_fit_regression_with_checkpoint_and_plateau(tmp_path):
    from gpunet import io
    from gpunet.training.callbacks import ModelCheckpoint

    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(120, 3)).astype("float32")
    y = (x @ numpy.array([[1.0], [-2.0], [0.5]], dtype="float32")).astype("float32")
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="test_loss")
    hist = fit(model, opt, "mse", (x[:100], y[:100]), (x[100:], y[100:]), epochs=6,
               scheduler=optim.lr_scheduler.ReduceLROnPlateau(opt), callbacks=[ckpt])
    assert "train_accuracy" not in hist[0] and hist[-1]["test_loss"] < hist[0]["test_loss"]
    best = min(range(len(hist)), key=lambda i: hist[i]["test_loss"]) + 1
    assert ckpt.best_epoch == best and set(io.load(tmp_path / "best.npz")) == {"weight", "bias"}
