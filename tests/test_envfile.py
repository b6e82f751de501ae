"""environment.yml files: written with PyYAML, read back, and matched against Conda bases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jupyter_layenv.export import environment_yml
from jupyter_layenv.model import VENV, Environment


def _plain_env(path: Path, name: str) -> Environment:
    path.mkdir(exist_ok=True)
    fields = dict(dir_id=(0, 0), kind=VENV, base=None, python=None, python_version="3.11", scope="user",
                  writable=True, owner_uid=0, has_ipykernel=False)  # fmt: skip
    return Environment(id=name, name=name, path=str(path), **fields)


@pytest.mark.parametrize("name", ["1.10", "true", "null", "0x1F", "2024-01-01", "no"])
def test_exported_names_that_look_like_other_yaml_types_stay_strings(tmp_path: Path, name: str):
    text = environment_yml(_plain_env(tmp_path / "env", name), None)
    assert yaml.safe_load(text) == {"name": name, "channels": ["conda-forge"], "dependencies": ["python=3.11"]}
