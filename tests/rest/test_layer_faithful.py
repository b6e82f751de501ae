"""A layer is faithful to its base: what the base provides is never installed into the layer (issue 9, part 1).

A real base (a Conda-style prefix whose ipykernel brings jupyter_core, traitlets and platformdirs), real uv and
pip, a real server; the wheelhouse holds those base packages at the base's own versions too, so an installer
that ignores the base would copy them into the layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from envtree import add_pure_python_package, layer_dists, site_packages
from layenv_api import BASE_ID, create, fetch_json, follow, run_in_kernel
from packaging.utils import canonicalize_name
from wheelhouse import FOUNDATION


@pytest.fixture(scope="module")
def wheelhouse(faithful_wheelhouse: Path) -> Path:
    return faithful_wheelhouse


@pytest.fixture(params=["uv", "pip"])
def installer(request: pytest.FixtureRequest, jp_serverapp) -> str:
    jp_serverapp.web_app.settings["layenv_service"].installer = request.param
    return request.param


async def test_a_layer_holds_only_what_the_base_lacks(jp_fetch, jp_serverapp, installer: str, create_home: Path):
    code, job = await create(jp_fetch, {"name": f"faithful-{installer}", "base": BASE_ID, "packages": ["nbthing"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    path = create_home / ".virtualenvs" / f"faithful-{installer}"
    assert layer_dists(path) == {"nbthing", "iniconfig"}  # not jupyter_core, traitlets, platformdirs
    _, env = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.faithful-{installer}")
    assert env["packages"]["shadowed"] == []
    inherited = {p["name"] for p in env["packages"]["inherited"]}
    assert {canonicalize_name(n) for n in FOUNDATION} <= {canonicalize_name(n) for n in inherited}
    probe = "import nbthing, traitlets; print(nbthing.WHERE, traitlets.__file__)"
    out = await run_in_kernel(jp_serverapp, f"{BASE_ID}.faithful-{installer}-py", probe)
    where, traitlets_file = out.split()
    assert where == "layer" and traitlets_file.startswith(str(create_home / "miniconda3"))


async def test_a_dependency_conflict_fails_before_anything_is_written(jp_fetch, installer: str, create_home: Path):
    code, job = await create(jp_fetch, {"name": f"conflict-{installer}", "base": BASE_ID, "packages": ["needsnew"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "failed" and job["step"] == "resolve", job
    error = job["error"]
    assert "needsnew" in error and "layenv_base_marker" in error and "1.0" in error and "2.0" in error, error
    assert "pick another base" in error and "layenv_base_marker==2.0" in error
    assert not (create_home / ".virtualenvs" / f"conflict-{installer}").exists()


async def test_a_requested_base_package_is_an_override_and_a_same_version_copy_a_duplicate(jp_fetch, create_home: Path):
    _, job = await create(jp_fetch, {"name": "override", "base": BASE_ID, "packages": ["layenv_base_marker==2.0"]})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    _, env = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.override")
    assert env["packages"]["shadowed"] == [
        {"name": "layenv_base_marker", "layer_version": "2.0", "base_version": "1.0", "reason": "requested"}
    ]
    # a layer made before this fix, holding a copy of the base's version: visible as a duplicate
    _, job = await create(jp_fetch, {"name": "olddup", "base": BASE_ID})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    add_pure_python_package(site_packages(create_home / ".virtualenvs" / "olddup"), "layenv_base_marker", "1.0")
    _, listing = await fetch_json(jp_fetch, "environments")
    by_id = {env["id"]: env for env in listing["environments"]}
    assert by_id[f"{BASE_ID}.olddup"]["shadowed"] == ["layenv_base_marker"]  # the listing's badge
    assert by_id[f"{BASE_ID}.override"]["shadowed"] == ["layenv_base_marker"] and by_id[BASE_ID]["shadowed"] == []
    jp_fetch_env = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.olddup")
    assert jp_fetch_env[1]["packages"]["shadowed"] == [
        {"name": "layenv_base_marker", "layer_version": "1.0", "base_version": "1.0", "reason": "duplicate"}
    ]


async def test_protected_packages_refuse_an_override(jp_fetch, jp_serverapp, create_home: Path):
    jp_serverapp.web_app.settings["layenv_service"].policy.protected_packages = ["layenv_base_*"]
    code, body = await create(jp_fetch, {"name": "protected", "base": BASE_ID, "packages": ["layenv_base_marker==2.0"]})
    assert code == 403, body
    assert "LayenvPolicy.protected_packages" in body["message"] and "layenv_base_marker" in body["message"]
    assert not (create_home / ".virtualenvs" / "protected").exists()
    # naming it in a version the base has is no override: allowed
    code, job = await create(jp_fetch, {"name": "protected", "base": BASE_ID, "packages": ["layenv_base_marker>=1"]})
    assert code == 202 and (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    assert layer_dists(create_home / ".virtualenvs" / "protected") == set()
    text = json.dumps(body)
    assert "rule" in text
