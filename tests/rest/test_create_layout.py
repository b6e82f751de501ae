"""The seed's layout: with ``layout = inside_base`` a new layer goes inside its writable Conda env."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from layenv_api import BASE_ID, create, fetch_json, follow


@pytest.fixture
def jp_server_config() -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"layout": "inside_base"},
    }


async def test_inside_base_layout(jp_fetch, create_home: Path):
    base = create_home / "miniconda3" / "envs" / "py311_ai"
    try:
        code, job = await create(jp_fetch, {"name": "myexp_env", "base": BASE_ID})
        assert code == 202 and job["path"] == str(base / "myexp_env")
        job = await follow(jp_fetch, job["id"])
        assert job["state"] == "succeeded", job
        assert job["environment"]["id"] == f"{BASE_ID}.myexp_env" and job["environment"]["base"] == str(base)
        assert not (create_home / ".virtualenvs" / "myexp_env").exists()
        code, _ = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.myexp_env", method="DELETE")
        assert code == 204 and not (base / "myexp_env").exists()
    finally:
        shutil.rmtree(base / "myexp_env", ignore_errors=True)
        shutil.rmtree(base / ".layenv-locks", ignore_errors=True)
