"""Shared fixtures: one real environment tree per test session (building it takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from envtree import Tree, build_home_tree

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def home_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """A fake HOME with a Conda install, layered envs, venvs and broken envs (see tests/envtree.py)."""
    return build_home_tree(tmp_path_factory.mktemp("home"))


@pytest.fixture
def home(home_tree: Tree, monkeypatch: pytest.MonkeyPatch) -> Tree:
    """The tree with HOME pointing at it and no activated conda shell, so default locations find it."""
    monkeypatch.setenv("HOME", str(home_tree.home))
    for var in (
        "CONDA_EXE",
        "CONDA_PREFIX",
        "MAMBA_ROOT_PREFIX",
        "CONDA_ENVS_PATH",
        "CONDA_ENVS_DIRS",
        "WORKON_HOME",
        "CONDARC",
        "CONDA_ROOT",
        "XDG_CONFIG_HOME",
    ):
        monkeypatch.delenv(var, raising=False)
    return home_tree


def tree_path(tree: Tree, *parts: str) -> Path:
    return tree.home.joinpath(*parts)
