"""Create a layer from an environment.yml through a real server: the Conda part picks the base, pip is the layer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from envtree import read_pyvenv_cfg
from layenv_api import BASE_ID, create, fetch_json, follow
from wheelhouse import INICONFIG_VERSION, wheels_from_installed


@pytest.fixture(scope="module")
def kernel_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ipykernel and its closure as wheels: a layer that does not inherit its base gets its own ipykernel."""
    directory = tmp_path_factory.mktemp("kernel-wheels")
    wheels_from_installed(directory, ("ipykernel",))
    return directory


@pytest.fixture
def jp_server_config(wheelhouse: Path, kernel_wheelhouse: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"find_links": [str(wheelhouse), str(kernel_wheelhouse)], "offline": True},
    }


async def _layer(jp_fetch, env_id: str) -> list[str]:
    code, env = await fetch_json(jp_fetch, "environments", env_id)
    assert code == 200, env
    return sorted(f"{p['name']}=={p['version']}" for p in env["packages"]["layer"])


async def test_export_delete_recreate_gives_the_same_base_and_layer(jp_fetch, create_home: Path):
    _, job = await create(jp_fetch, {"name": "roundtrip", "base": BASE_ID, "packages": ["iniconfig"]})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    env_id = f"{BASE_ID}.roundtrip"
    before = await _layer(jp_fetch, env_id)
    assert f"iniconfig=={INICONFIG_VERSION}" in before
    response = await jp_fetch("layenv", "environments", env_id, "export", params={"format": "environment.yml"})
    text = response.body.decode()
    exported = yaml.safe_load(text)
    # the file names every package of the base exactly, and the base's own pip-installed module as well
    assert "layenv_base_marker==1.0" in exported["dependencies"][-1]["pip"]
    assert (await jp_fetch("layenv", "environments", env_id, method="DELETE")).code == 204

    code, job = await create(jp_fetch, {"environment_yml": text})  # the name comes from the file
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    assert job["environment"]["id"] == env_id and job["environment"]["base"] == str(
        create_home / "miniconda3/envs/py311_ai"
    )
    assert await _layer(jp_fetch, env_id) == before  # the same layer: the base's module stayed the base's
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert f"# environment.yml: base {BASE_ID} satisfies all " in log
    assert "; kept from the base: layenv_base_marker==1.0\n" in log
    provenance = json.loads((create_home / ".virtualenvs" / "roundtrip" / "layenv.json").read_text())
    assert provenance["base_id"] == BASE_ID
    recorded = provenance["environment_yml"]
    assert recorded["channels"] == ["conda-forge"] and recorded["kept_from_base"] == ["layenv_base_marker==1.0"]
    assert recorded["conda"] == [d for d in exported["dependencies"] if isinstance(d, str)]


async def test_a_layer_without_inherit_exports_and_rebuilds_without_inherit(jp_fetch, create_home: Path):
    """``inherit: false`` goes into the file, and a create from it makes a closed layer again, with every pip
    package its own (none kept from the base, whose packages it does not see)."""
    _, job = await create(jp_fetch, {"name": "closed", "base": BASE_ID, "packages": ["iniconfig"], "inherit": False})
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    env_id = f"{BASE_ID}.closed"
    before = await _layer(jp_fetch, env_id)
    assert f"iniconfig=={INICONFIG_VERSION}" in before and any(p.startswith("ipykernel==") for p in before)
    text = (await jp_fetch("layenv", "environments", env_id, "export", params={"format": "environment.yml"})).body
    exported = yaml.safe_load(text)
    assert exported["inherit"] is False
    assert "layenv_base_marker==1.0" not in exported["dependencies"][-1]["pip"]  # the base's: not this layer's
    assert (await jp_fetch("layenv", "environments", env_id, method="DELETE")).code == 204

    code, job = await create(jp_fetch, {"environment_yml": text.decode()})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    layer = create_home / ".virtualenvs" / "closed"
    assert read_pyvenv_cfg(layer)["include-system-site-packages"] == "false"
    assert await _layer(jp_fetch, env_id) == before
    _, env = await fetch_json(jp_fetch, "environments", env_id)
    assert env["packages"]["inherited"] == []
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "kept from the base" not in log
    # an inheriting layer's file says nothing about it (conda reads the file too)
    _, job = await create(jp_fetch, {"name": "open", "base": BASE_ID, "packages": ["iniconfig"]})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    text = await jp_fetch("layenv", "environments", f"{BASE_ID}.open", "export", params={"format": "environment.yml"})
    assert "inherit" not in yaml.safe_load(text.body)


async def test_the_closest_base_is_chosen_and_the_body_name_wins(jp_fetch, create_home: Path):
    """Both bases have python; only py311_ai has ipykernel, so only py311_ai satisfies the file."""
    text = "name: from-file\nchannels: [conda-forge]\ndependencies: [python>=3.8, ipykernel, {pip: [iniconfig]}]\n"
    code, job = await create(jp_fetch, {"environment_yml": text, "name": "named", "display_name": "From a file"})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    assert job["environment"]["id"] == f"{BASE_ID}.named"
    assert job["environment"]["kernels"][0]["display_name"] == "From a file"
    assert f"iniconfig=={INICONFIG_VERSION}" in await _layer(jp_fetch, f"{BASE_ID}.named")
    assert not (create_home / ".virtualenvs" / "from-file").exists()


async def test_no_base_fits_422_lists_what_the_closest_bases_lack(jp_fetch, create_home: Path):
    before = sorted(os.listdir(create_home / ".virtualenvs"))
    text = "name: gpu\ndependencies: [python=2.7, 'conda-forge::pytorch>=2', ipykernel, {pip: [iniconfig]}]\n"
    code, body = await create(jp_fetch, {"environment_yml": text})
    assert code == 422 and body["reason"] == "no matching base", body
    assert "python=2.7" in body["message"] and "pytorch" in body["message"]
    assert '"build_base": true builds one' in body["message"]  # what to do, beside loosening the specs
    closest = {base["id"]: base for base in body["bases"]}
    assert body["bases"][0]["id"] == BASE_ID  # it fails two specs, the root three
    assert [u["spec"] for u in closest[BASE_ID]["unmet"]] == ["python=2.7", "conda-forge::pytorch>=2"]
    assert closest[BASE_ID]["unmet"][0]["found"].startswith("3.") and closest[BASE_ID]["unmet"][1]["found"] is None
    assert [u["spec"] for u in closest["conda-base"]["unmet"]] == ["python=2.7", "conda-forge::pytorch>=2", "ipykernel"]
    assert sorted(os.listdir(create_home / ".virtualenvs")) == before


async def test_bad_files_and_mixed_bodies_are_refused(jp_fetch, create_home: Path):
    before = sorted(os.listdir(create_home / ".virtualenvs"))
    cases = [
        ({"environment_yml": "name: x\ndependencies: [python]\n", "base": BASE_ID}, 400, "cannot be sent with"),
        ({"environment_yml": "dependencies: [python]\n"}, 400, "no 'name:'"),
        ({"environment_yml": "name: ../up\ndependencies: [python]\n"}, 400, "invalid env name"),
        ({"environment_yml": "name: x\ndependencies:\n  - pip:\n    - --extra-index-url=http://evil\n"}, 400,
         "installer option"),
        ({"environment_yml": "name: x\ndependencies:\n  - https://evil/python-3.11-0.conda\n"}, 400, "not a Conda"),
        ({"environment_yml": 3}, 400, "text of an environment.yml"),
        ({"environment_yml": "name: x\ninherit: 'no'\ndependencies: [python]\n"}, 400, "'inherit' must be"),
    ]  # fmt: skip
    for body, status, message in cases:
        code, reply = await create(jp_fetch, body)
        assert code == status and message in reply["message"], (body, reply)
    assert sorted(os.listdir(create_home / ".virtualenvs")) == before
