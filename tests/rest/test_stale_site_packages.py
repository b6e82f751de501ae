"""A ``lib/python3.X/site-packages`` another Python left behind is not the env's: its package list, its export, the
plans of its layers, their changes, restores and revisions read the site-packages of the Python discovery gives it.

A Conda env whose Python was changed keeps the old ``lib/python3.X`` with pip-installed leftovers; here a stray,
newer ``lib/python3.99/site-packages`` holds ``leftover`` (pip-installed) and ``iniconfig`` (which the base's own
Python does not have). Reading the newest site-packages instead lists and exports the leftovers, and plans a layer
against them: the base's foundation (jupyter_core, traitlets, platformdirs) installed again into the layer, and
``iniconfig`` (only in the stray directory) left out of it. A real base, real uv, a real server.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from envtree import add_pure_python_package, layer_dists, make_conda_prefix, site_packages
from layenv_api import create, fetch_json, follow
from packaging.utils import canonicalize_name
from wheelhouse import FOUNDATION, INICONFIG_VERSION

BASE = "conda-stale_base"
STRAY = ("lib", "python3.99", "site-packages")


@pytest.fixture(scope="module")
def wheelhouse(faithful_wheelhouse: Path) -> Path:
    return faithful_wheelhouse


@pytest.fixture(scope="module")
def stale_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~/miniconda3/envs/stale_base (ipykernel, pip, a pip-installed marker) with a stray newer site-packages."""
    home = tmp_path_factory.mktemp("stale-home")
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    base = make_conda_prefix(root / "envs" / "stale_base", ipykernel=True, packages=["pip"])
    add_pure_python_package(site_packages(base), "layenv_base_marker", "1.0", 'WHERE = "stale_base"\n')
    stray = base.joinpath(*STRAY)
    add_pure_python_package(stray, "leftover", "1.0")
    add_pure_python_package(stray, "iniconfig", INICONFIG_VERSION)
    (home / ".virtualenvs").mkdir()
    return home


@pytest.fixture
def jp_home_dir(stale_home: Path) -> Path:
    return stale_home


def _names(packages: list[dict[str, str]]) -> set[str]:
    return {canonicalize_name(p["name"]) for p in packages}


async def test_the_package_list_and_export_are_the_site_packages_of_the_envs_python(jp_fetch):
    code, env = await fetch_json(jp_fetch, "environments", BASE)
    assert code == 200, env
    assert env["python_version"] and not env["python_version"].startswith("3.99")
    own = _names(env["packages"]["layer"])
    assert {"ipykernel", "layenv-base-marker", "pip"} <= own, own
    assert not own & {"leftover", "iniconfig"}, own
    response = await jp_fetch("layenv", "environments", BASE, "export", params={"format": "environment.yml"})
    pip = next(d["pip"] for d in yaml.safe_load(response.body.decode())["dependencies"] if isinstance(d, dict))
    assert pip == ["layenv_base_marker==1.0"]


async def test_a_layer_on_the_base_is_planned_against_what_its_python_sees(jp_fetch, stale_home: Path):
    """Faithful: nothing of the base installed again, nothing it lacks left out; its list, lock export and revisions
    read the site-packages of its Python too (a stray one of its own is not it)."""
    code, job = await create(jp_fetch, {"name": "lay", "base": BASE, "packages": ["nbthing"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    layer = stale_home / ".virtualenvs" / "lay"
    assert layer_dists(layer) == {"nbthing", "iniconfig"}  # not the foundation, and iniconfig the base lacks
    python = layer / "bin" / "python"
    out = subprocess.run([python, "-c", "import nbthing, iniconfig, traitlets; print(traitlets.__file__)"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert out.stdout.startswith(str(stale_home / "miniconda3"))
    env_id = f"{BASE}.lay"
    add_pure_python_package(layer.joinpath(*STRAY), "ghost", "1.0")  # the layer's own stray site-packages
    _, env = await fetch_json(jp_fetch, "environments", env_id)
    assert _names(env["packages"]["layer"]) == {"nbthing", "iniconfig"}
    inherited = _names(env["packages"]["inherited"])
    assert {canonicalize_name(n) for n in FOUNDATION} | {"layenv-base-marker"} <= inherited, inherited
    assert not inherited & {"leftover", "iniconfig"}, inherited
    response = await jp_fetch("layenv", "environments", env_id, "export", params={"format": "lock"})
    lock = [line.split()[0] for line in response.body.decode().splitlines() if not line.startswith("#")]
    assert lock == [f"iniconfig=={INICONFIG_VERSION}", "nbthing==1.0"]

    # revisions: a change in the stray directory is no change of the base; one in its real site-packages is
    base = stale_home / "miniconda3" / "envs" / "stale_base"
    add_pure_python_package(base.joinpath(*STRAY), "newleftover", "1.0")
    _, history = await fetch_json(jp_fetch, "environments", env_id, "revisions")
    assert [r["base_changed"] for r in history["revisions"]] == [False]
    added = add_pure_python_package(site_packages(base), "latecomer", "1.0")
    try:
        _, history = await fetch_json(jp_fetch, "environments", env_id, "revisions")
        assert [r["base_changed"] for r in history["revisions"]] == [True]
    finally:
        added.unlink()
        for path in sorted(site_packages(base).glob("latecomer-1.0.dist-info/*")):
            path.unlink()
        (site_packages(base) / "latecomer-1.0.dist-info").rmdir()

    # a restore of revision 1 after a change: only the layer's own site-packages differs
    code, job = await fetch_json(jp_fetch, "environments", env_id, "packages", method="POST",
                                 body='{"remove": ["nbthing"]}')  # fmt: skip
    assert code == 202, job
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    assert layer_dists(layer) == {"iniconfig"}
    code, job = await fetch_json(jp_fetch, "environments", env_id, "revisions", "1", "restore", method="POST", body="")
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    assert layer_dists(layer) == {"nbthing", "iniconfig"}
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    plan = json.loads(next(line for line in log.splitlines() if line.startswith("# plan: "))[len("# plan: ") :])
    assert [p["name"] for p in plan["install"]] == ["nbthing"] and plan["remove"] == [], plan
    assert (layer.joinpath(*STRAY) / "ghost-1.0.dist-info").is_dir()  # not the restore's to touch
