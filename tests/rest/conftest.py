"""Fixtures of the REST tests: a real server (pytest-jupyter) with jupyter_layenv on the create HOME.

Here rather than in tests/conftest.py because they change HOME and the server's configuration: a module of this
folder overrides ``jp_home_dir`` or ``jp_server_config`` by defining its own. Plain helpers (calls, job polling,
kernels) are in tests/layenv_api.py, imported by bare name like every helper in tests/: pytest (default import mode)
puts tests/ on sys.path when it loads tests/conftest.py, which it does for any test under tests/, this folder included.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def jp_home_dir(clean_create_home: Path) -> Path:
    return clean_create_home


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    """A fresh machine: no Conda install, no env at all (only the server's own venv is listed)."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture(autouse=True)
def no_test_pythonpath(jp_environ, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-jupyter exports the test's sys.path as PYTHONPATH: kernels would import the dev venv's packages."""
    monkeypatch.delenv("PYTHONPATH", raising=False)


@pytest.fixture
def jp_server_config(wheelhouse: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"find_links": [str(wheelhouse)], "offline": True},
    }
