"""The top-level names: every public estimator, SubjectData, load and save, and the README's table."""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import skneuro

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_table():
    """``{name: module}`` of the rows of the README's "Estimators" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Estimators", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header, separator, *body = rows
    assert [cell.strip() for cell in header.strip("|").split("|")] == ["estimator", "model", "module"]
    assert set(separator.replace("|", "").strip()) <= set("-: ")
    table = {}
    for row in body:
        name = re.fullmatch(r"`(\w+)`", row.split("|")[1].strip())
        module = re.fullmatch(r"`([\w.]+)`", row.rstrip().rstrip("|").split("|")[-1].strip())
        assert name and module, f"README row not of the form | `Name` | ... | `module` |: {row}"
        table[name.group(1)] = module.group(1)
    return table


def _public_estimators_of_subpackages():
    """``{name: class}`` of every scikit-learn estimator in a public subpackage's ``__all__``."""
    found = {}
    for info in pkgutil.iter_modules(skneuro.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"skneuro.{info.name}")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                found[name] = obj
    return found


def test_every_name_in_all_is_importable():
    namespace = {}
    exec("from skneuro import *", namespace)
    for name in skneuro.__all__:
        assert hasattr(skneuro, name), name
        assert name in namespace, name
    assert len(set(skneuro.__all__)) == len(skneuro.__all__)


def test_every_public_estimator_is_a_top_level_name():
    for name, cls in _public_estimators_of_subpackages().items():
        assert name in skneuro.__all__, f"{name} is public in {cls.__module__} but not in skneuro.__all__"
        assert getattr(skneuro, name) is cls


@pytest.mark.parametrize("name", ["SubjectData", "load", "save", "RateRNNRegressor", "MultiSubjectLatentRegressor"])
def test_names_the_issue_asked_for(name):
    assert name in skneuro.__all__
    assert callable(getattr(skneuro, name))


def test_readme_table_and_all_agree():
    table = _readme_table()
    estimators = {
        name
        for name in skneuro.__all__
        if isinstance(getattr(skneuro, name), type) and issubclass(getattr(skneuro, name), BaseEstimator)
    }
    assert set(table) == estimators, (
        f"in the README only: {sorted(set(table) - estimators)}; in __all__ only: {sorted(estimators - set(table))}"
    )
    for name, module in table.items():
        assert getattr(importlib.import_module(module), name) is getattr(skneuro, name), f"{name} is not in {module}"
    assert set(skneuro.__all__) - estimators == {"SubjectData", "load", "save", "__version__"}
