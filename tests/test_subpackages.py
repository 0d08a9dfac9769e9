"""Each room says what it offers (issue 23): a subpackage's docstring names its modules and
its ``__all__`` lists them; the package docstring names only modules that exist."""

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import twin

PKG = Path(twin.__file__).parent
# twin.io, twin.recon and twin.scenario re-export their own names (their __all__ is not a
# module list)
MODULE_LISTS = ["acquisition", "analysis", "beam", "core", "data", "operators", "sample", "tomo",
                "workflows"]


@pytest.mark.parametrize("name", MODULE_LISTS)
def test_all_lists_every_module(name):
    pkg = importlib.import_module(f"twin.{name}")
    modules = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__))
    assert sorted(pkg.__all__) == modules
    assert pkg.__doc__
    for m in modules:
        assert f"twin.{name}.{m}`" in pkg.__doc__, f"twin.{name}'s docstring omits {m}"


def test_docstrings_name_only_modules_that_exist():
    docs = [twin.__doc__] + [importlib.import_module(f"twin.{n}").__doc__ for n in MODULE_LISTS]
    named = {m for d in docs for m in re.findall(r":mod:`~?(twin(?:\.\w+)*)`", d)}
    assert len(named) > 30
    for m in sorted(named):
        assert importlib.util.find_spec(m) is not None, m
    # every subpackage is in the package's own docstring
    for sub in sorted(p.parent.name for p in PKG.glob("*/__init__.py")):
        assert sub == "data" or f":mod:`twin.{sub}`" in twin.__doc__, sub


def test_scenario_reexports_every_name_of_its_modules():
    # twin.scenario is split into modules but read as one namespace (`from twin.scenario import
    # Scan`): a model added to a module and not re-exported would be missing there
    pkg = importlib.import_module("twin.scenario")
    exported = set()
    for m in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"twin.scenario.{m.name}")
        assert m.name.startswith("_") or f"twin.scenario.{m.name}`" in pkg.__doc__, m.name
        for name in mod.__all__:
            assert getattr(pkg, name) is getattr(mod, name), name
        exported.update(mod.__all__)
    assert sorted(pkg.__all__) == sorted(exported)
