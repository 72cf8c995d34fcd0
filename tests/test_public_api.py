"""Tests of the package's public surface: ``__all__``, ``py.typed`` and the sub-packages."""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest

import vidgo_async


def test_all_lists_exactly_the_public_names() -> None:
    """Every public name the package defines is in ``__all__`` and every entry exists."""
    public = {
        name
        for name, value in vars(vidgo_async).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public | {"__version__"} == set(vidgo_async.__all__)
    assert len(vidgo_async.__all__) == len(set(vidgo_async.__all__))


@pytest.mark.parametrize(
    "module", ["vidgo_async.fleet", "vidgo_async.testing", "vidgo_async.webhooks"]
)
def test_public_subpackages_export_what_they_list(module: str) -> None:
    """The public sub-packages' ``__all__`` names all exist."""
    imported = importlib.import_module(module)
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name} is listed but missing"


def test_package_ships_py_typed() -> None:
    """The package is marked as typed for type checkers."""
    assert (Path(vidgo_async.__file__).parent / "py.typed").is_file()
