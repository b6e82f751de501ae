"""Shared fixtures: one real environment tree per test session (building it takes seconds)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from envtree import Tree, build_home_tree, isolate_home
from wheelhouse import write_create_wheels, write_faithful_wheels

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def home_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """A fake HOME with a Conda install, layered envs, venvs and broken envs (see tests/envtree.py)."""
    return build_home_tree(tmp_path_factory.mktemp("home"))


@pytest.fixture
def home(home_tree: Tree, monkeypatch: pytest.MonkeyPatch) -> Tree:
    """The tree with HOME pointing at it and no activated conda shell, so default locations find it."""
    isolate_home(monkeypatch, home_tree.home)
    return home_tree


# ---------------------------------------------------------------------- creating envs (issue 3: create/export/delete)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local wheelhouse with the create tests' packages (hermetic: no index)."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    write_create_wheels(directory)
    return directory


@pytest.fixture(scope="session")
def faithful_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The create wheels plus the base's own packages and a broken wheel (see wheelhouse.write_faithful_wheels):
    a module whose layers must stay faithful to their base overrides ``wheelhouse`` with it."""
    directory = tmp_path_factory.mktemp("faithful-wheelhouse")
    write_faithful_wheels(directory)
    return directory


@pytest.fixture(scope="session")
def create_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME of its own for the create tests: ~/miniconda3 with envs/py311_ai (ipykernel, pip, a base-only module)."""
    from envtree import add_pure_python_package, make_conda_prefix, site_packages

    home = tmp_path_factory.mktemp("create-home")
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    base = make_conda_prefix(root / "envs" / "py311_ai", ipykernel=True, packages=["pip"])  # conda envs have pip
    add_pure_python_package(site_packages(base), "layenv_base_marker", "1.0", 'WHERE = "py311_ai"\n')
    (home / ".virtualenvs").mkdir()
    return home


@pytest.fixture
def clean_create_home(create_home: Path) -> Path:
    """The create HOME with an empty ~/.virtualenvs, whatever an earlier test left there."""
    import shutil

    root = create_home / ".virtualenvs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    return create_home


@pytest.fixture
def cli_env(clean_create_home: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a ``jupyter layenv`` run (tests/cli_api.py) on the create HOME, with Jupyter dirs of its own
    and no PYTHONPATH (the CLI's kernels and installers would import the dev venv's packages)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "HOME": str(clean_create_home), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}  # fmt: skip


@pytest.fixture
def stalling_index():
    """A package index that never answers: an install waits on it until its job is cancelled."""
    from layenv_api import StallingIndex

    index = StallingIndex()
    yield index
    index.close()


@pytest.fixture
def audit(jp_serverapp) -> list[dict]:
    """What the server's event logger records for jupyter_layenv."""
    events: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            data = record.msg if isinstance(record.msg, dict) else json.loads(record.getMessage())
            if "jupyter_layenv" in data.get("__schema__", ""):
                events.append(data)

    handler = Collect()
    jp_serverapp.event_logger.register_handler(handler)
    yield events
    jp_serverapp.event_logger.remove_handler(handler)
