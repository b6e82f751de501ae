"""The seed's layout: with ``layout = inside_base`` a new layer goes inside its writable Conda env; with nested venvs
not looked for, discovery does not see it there, and the create says which setting to change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from layenv_api import BASE_ID, create, fetch_json, follow


@pytest.fixture
def nested_venvs() -> bool:
    return True


@pytest.fixture
def jp_server_config(nested_venvs: bool) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"layout": "inside_base"},
        "LayenvKernelSpecManager": {"nested_venvs": nested_venvs},
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


@pytest.mark.parametrize("nested_venvs", [False])
async def test_inside_base_where_discovery_does_not_look_names_the_roots_to_configure(jp_fetch, create_home: Path,
                                                                                     audit):  # fmt: skip
    """Discovery neither lists nor skips the new layer (it does not look inside Conda envs): the last step fails
    naming the directory and the settings that make discovery look there, removes the layer, frees the name."""
    base = create_home / "miniconda3" / "envs" / "py311_ai"
    path = base / "hidden_env"
    try:
        code, job = await create(jp_fetch, {"name": "hidden_env", "base": BASE_ID})
        assert code == 202 and job["path"] == str(path), job
        job = await follow(jp_fetch, job["id"])
        assert job["state"] == "failed" and job["step"] == "register", job
        error = job["error"]
        assert error.startswith(
            f"{path} was built but discovery does not look in {base}: add that directory to "
            "LayenvKernelSpecManager.venv_roots (envs_dirs for a Conda env), or check LayenvService.user_root"
        ), error
        assert "discovery skips it" not in error and error.endswith(f"; {path} was removed, create it again"), error
        assert not path.exists()
        assert (audit[-1]["action"], audit[-1]["outcome"], audit[-1]["detail"]) == ("create", "failed", error)
        code, again = await create(jp_fetch, {"name": "hidden_env", "base": BASE_ID})
        assert code == 202, again  # the name is free: no "exists already"
        await fetch_json(jp_fetch, "jobs", again["id"], method="DELETE")
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(base / ".layenv-locks", ignore_errors=True)
