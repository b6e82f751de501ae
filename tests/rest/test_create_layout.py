"""The seed's layout: with ``layout = inside_base`` a new layer goes inside its writable Conda env; with nested venvs
not looked for, discovery would not see it there, so it goes to the user root and the server says so at its start."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from isolated_ksm import looking_only_at
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


@pytest.mark.parametrize("name", ["lib", "bin", "conda-meta"])
async def test_a_name_that_is_one_of_the_bases_own_folders_is_refused_without_delete_it(
    jp_fetch, create_home: Path, audit, name: str
):
    """In the seed's layout a layer named ``lib`` would go to ``envs/py311_ai/lib``, the base's own folder: the 409
    said "… exists already; pick another name or delete it first", advice that destroys the base if followed."""
    base = create_home / "miniconda3" / "envs" / "py311_ai"
    code, body = await create(jp_fetch, {"name": name, "base": BASE_ID})
    assert code == 409, body
    assert "delete" not in body["message"], body["message"]
    assert f"{base / name} is a folder of the Conda environment py311_ai" in body["message"], body["message"]
    assert "pick another name" in body["message"], body["message"]
    assert (base / name).is_dir() and audit[-1]["outcome"] == "refused"


@pytest.mark.parametrize("nested_venvs", [False])
async def test_inside_base_without_nested_venvs_puts_the_layer_in_the_user_root(jp_fetch, create_home: Path):
    """Discovery does not look inside Conda envs: a layer built inside its base would not be listed (the create used
    to build it there, then fail and remove it), so the layer goes to the user root, where it is listed."""
    base = create_home / "miniconda3" / "envs" / "py311_ai"
    path = create_home / ".virtualenvs" / "outside_env"
    try:
        code, job = await create(jp_fetch, {"name": "outside_env", "base": BASE_ID})
        assert code == 202 and job["path"] == str(path), job
        job = await follow(jp_fetch, job["id"])
        assert job["state"] == "succeeded", job
        assert job["environment"]["base"] == str(base) and not (base / "outside_env").exists()
        code, _ = await fetch_json(jp_fetch, "environments", job["environment"]["id"], method="DELETE")
        assert code == 204 and not path.exists()
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    "layout, nested, warned", [("inside_base", False, True), ("inside_base", True, False), ("user_root", False, False)]
)
def test_the_server_warns_that_inside_base_needs_nested_venvs(
    caplog: pytest.LogCaptureFixture, layout: str, nested: bool, warned: bool
):
    """Only the combination that would hide a layer warns (broken by: a warning on every start, or none)."""
    from jupyter_layenv.service import LayenvService

    log = logging.getLogger("layenv-layout-test")
    with caplog.at_level(logging.WARNING, logger=log.name):
        LayenvService(ksm=looking_only_at(nested_venvs=nested), layout=layout, log=log)
    assert any("needs LayenvKernelSpecManager.nested_venvs = True" in r.getMessage() for r in caplog.records) is warned
