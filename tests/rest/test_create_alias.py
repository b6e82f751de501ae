"""A user root discovery knows under another name: ``LayenvService.user_root`` is a symlink to a directory that
``LayenvKernelSpecManager.venv_roots`` names by its real path. Discovery lists each env there once, under the venv
root's name (the first place it finds a directory names it), so an env the create made at ``<user_root>/NAME`` is
listed as ``<venv root>/NAME``: the same directory, listed, a kernel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from layenv_api import BASE_ID, create, fetch_json, follow


@pytest.fixture
def aliased_root(clean_create_home: Path) -> Iterator[tuple[Path, Path]]:
    """(the user root, a symlink; the directory it points to, a venv root) in the shared create HOME."""
    real = clean_create_home / "data" / "venvs"
    real.mkdir(parents=True)
    link = clean_create_home / "venvs-link"
    link.symlink_to(real)
    yield link, real
    link.unlink()
    shutil.rmtree(clean_create_home / "data")


@pytest.fixture
def jp_server_config(wheelhouse: Path, aliased_root: tuple[Path, Path]) -> dict:
    link, real = aliased_root
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"find_links": [str(wheelhouse)], "offline": True, "user_root": str(link)},
        "LayenvKernelSpecManager": {"venv_roots": [str(real)]},
    }


async def test_an_env_created_in_a_user_root_listed_under_another_name_is_kept_and_listed(
    jp_fetch, aliased_root: tuple[Path, Path], audit
):
    link, real = aliased_root
    code, job = await create(jp_fetch, {"name": "aliased", "base": BASE_ID})
    assert code == 202 and job["path"] == str(link / "aliased"), job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job["error"]
    env = job["environment"]
    assert env["path"] == str(real / "aliased") and env["kernels"], env
    assert (link / "aliased" / "pyvenv.cfg").is_file()
    assert (audit[-1]["action"], audit[-1]["outcome"]) == ("create", "succeeded"), audit

    _, listing = await fetch_json(jp_fetch, "environments")
    assert [e["path"] for e in listing["environments"] if e["name"] == "aliased"] == [str(real / "aliased")]
    assert [s for s in listing["skipped"] if s["path"].endswith("/aliased")] == []  # no "leftover: rm -r" for it
    code, again = await create(jp_fetch, {"name": "aliased", "base": BASE_ID})
    assert code == 409 and "exists already" in again["message"], again

    code, _ = await fetch_json(jp_fetch, "environments", env["id"], method="DELETE")
    assert code == 204 and not (real / "aliased").exists()
