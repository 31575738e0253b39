"""``import gpunet`` gives every subpackage: the core eagerly, the heavy ones lazily (PEP 562)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gpunet

REPO = Path(__file__).resolve().parents[1]
CORE = ("autograd", "backend", "config", "dtypes", "functional", "io", "nn", "optim", "random", "testing")


def run_fresh(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPUNET_QUIET": "1", "GPUNET_BACKEND": "numpy",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_plain_import_gives_models_and_data_in_a_fresh_process():
    result = run_fresh("import gpunet; gpunet.models.LeNet; gpunet.data.DataLoader; gpunet.optim.SGD; "
                       "gpunet.nn.Linear; gpunet.functional.relu; gpunet.io.save; gpunet.testing.gradcheck")
    assert result.returncode == 0, result.stderr


def test_lazy_subpackages_are_not_imported_until_used():
    code = ("import json, sys, gpunet\n"
            f"core = {CORE!r}\n"
            "before = sorted(n for n in gpunet._LAZY_SUBMODULES if 'gpunet.' + n in sys.modules)\n"
            "gpunet.models\n"
            "print(json.dumps({'before': before, 'models': 'gpunet.models' in sys.modules,\n"
            "                  'core': [n for n in core if 'gpunet.' + n not in sys.modules]}))")
    result = run_fresh(code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    # The op layer finds the GPU launchers by name, so not even gpunet.cuda is imported by the core.
    assert seen["before"] == [], seen
    assert seen["models"] and seen["core"] == []


def test_dir_lists_the_subpackages():
    names = dir(gpunet)
    for name in CORE + ("data", "models", "bench"):
        assert name in names, name
    package = Path(gpunet.__file__).parent
    for name in gpunet._LAZY_SUBMODULES:  # listed exactly when the module is in this tree
        present = (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()
        assert (name in names) == present, name
    assert all(hasattr(gpunet, name) for name in names)


def test_a_lazy_name_without_its_module_is_an_attribute_error(monkeypatch):
    """``training`` is in the lazy list before its package lands: AttributeError, not a crash."""
    assert "training" in gpunet._LAZY_SUBMODULES
    monkeypatch.delitem(gpunet.__dict__, "training", raising=False)
    monkeypatch.setitem(sys.modules, "gpunet.training", None)  # import gpunet.training -> ModuleNotFoundError
    assert not hasattr(gpunet, "training")
    with pytest.raises(AttributeError, match="training"):
        gpunet.training  # noqa: B018


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gpunet.nope  # noqa: B018
    assert not hasattr(gpunet, "cli_helpers")


def test_a_lazy_name_is_looked_up_only_in_the_package_folder(monkeypatch, tmp_path):
    """An editable install's finder maps gpunet.* to its own checkout: a module that only that
    other checkout has is not part of this gpunet."""
    import importlib.abc
    import importlib.util

    (tmp_path / "ghost.py").write_text("")

    class Elsewhere(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname == "gpunet.ghost":
                return importlib.util.spec_from_file_location(fullname, tmp_path / "ghost.py")
            return None

    monkeypatch.setattr(gpunet, "_LAZY_SUBMODULES", (*gpunet._LAZY_SUBMODULES, "ghost"))
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Elsewhere()])
    assert importlib.util.find_spec("gpunet.ghost") is not None  # the outside finder answers
    assert "ghost" not in dir(gpunet) and not hasattr(gpunet, "ghost")
    assert "gpunet.ghost" not in sys.modules
