"""Create, inspect, export and delete a layered env through a real server, and run code in its kernel."""

from __future__ import annotations

import json
from pathlib import Path

from layenv_api import BASE_ID, create, fetch_json, follow, run_in_kernel
from wheelhouse import INICONFIG_VERSION

from jupyter_layenv.cli_sync import sync_kernelspecs

PROBE = """
import json, sys, iniconfig, layenv_base_marker
print(json.dumps({"prefix": sys.prefix, "iniconfig": iniconfig.__file__, "version": iniconfig.__version__,
                  "base": layenv_base_marker.WHERE}))
"""


async def test_create_run_export_roundtrip_delete(jp_fetch, jp_serverapp, create_home: Path):
    before = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    code, job = await create(jp_fetch, {"name": "myproj", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    path = create_home / ".virtualenvs" / "myproj"
    assert job["environment"]["path"] == str(path) and job["progress"] == 1
    kernel = f"{BASE_ID}.myproj-py"

    # the very next kernelspec listing has it, and its kernel imports the layer package and a base-only one
    after = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert set(after) - set(before) == {kernel}
    out = json.loads(await run_in_kernel(jp_serverapp, kernel, PROBE))
    assert out["prefix"] == str(path)
    assert out["iniconfig"].startswith(str(path)) and out["version"] == INICONFIG_VERSION
    assert out["base"] == "py311_ai"

    # provenance, package split, exports
    provenance = json.loads((path / "layenv.json").read_text())
    assert provenance["packages"] == ["iniconfig"] and provenance["base"] == str(
        create_home / "miniconda3/envs/py311_ai"
    )
    assert not (path / ".layenv-building").exists()
    code, env = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.myproj")
    assert code == 200 and env["kind"] == "layered" and env["kernels"][0]["name"] == kernel
    assert {"name": "iniconfig", "version": INICONFIG_VERSION} in env["packages"]["layer"]
    assert "ipykernel" in {p["name"] for p in env["packages"]["inherited"]}
    assert env["packages"]["shadowed"] == []
    response = await jp_fetch("layenv", "environments", f"{BASE_ID}.myproj", "export",
                              params={"format": "requirements.txt"})  # fmt: skip
    requirements = response.body.decode()
    assert "attachment" in response.headers["Content-Disposition"]
    assert [line for line in requirements.splitlines() if not line.startswith("#")] == [
        f"iniconfig=={INICONFIG_VERSION}"
    ]
    response = await jp_fetch("layenv", "environments", f"{BASE_ID}.myproj", "export",
                              params={"format": "environment.yml"})  # fmt: skip
    yml = response.body.decode()
    assert yml.startswith("name: myproj\nchannels:\n  - conda-forge\ndependencies:\n")
    assert "  - python=3." in yml and "  - ipykernel=" in yml
    # the base's pip-installed module and the layer's package, in the pip section
    assert yml.endswith(f"  - pip:\n      - iniconfig=={INICONFIG_VERSION}\n      - layenv_base_marker==1.0\n")

    # the requirements.txt round-trips: a new layer from it on the same base has the same layer packages
    code, job = await create(jp_fetch, {"name": "copy", "base": BASE_ID, "requirements": requirements})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    _, copy = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.copy")
    assert copy["packages"]["layer"] == env["packages"]["layer"]

    # delete: 204, gone from disk and from the kernel list at once
    response = await jp_fetch("layenv", "environments", f"{BASE_ID}.myproj", method="DELETE")
    assert response.code == 204 and not path.exists()
    final = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert kernel not in final and f"{BASE_ID}.copy-py" in final
    code, jobs = await fetch_json(jp_fetch, "jobs")
    assert [j["name"] for j in jobs["jobs"]] == ["copy", "myproj"]


async def test_layer_without_packages_is_a_small_kernel(jp_fetch, create_home: Path):
    _, job = await create(jp_fetch, {"name": "bare", "base": BASE_ID, "display_name": "Bare layer (demo)"})
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    assert job["environment"]["kernels"][0] == {
        "name": f"{BASE_ID}.bare-py",
        "display_name": "Bare layer (demo)",  # the display name asked for, not the configured format
        "language": "python",
    }
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "virtualenv" in log and "--no-seed" in log and "== succeeded" in log
    path = create_home / ".virtualenvs" / "bare"
    size = sum(f.lstat().st_size for f in path.rglob("*"))
    assert size < 1024 * 1024  # the base's pip serves the layer: nothing copied
    tail = (await jp_fetch("layenv", "jobs", job["id"], "log", params={"offset": str(len(log.encode()))})).body
    assert tail == b""


async def test_a_failed_install_leaves_nothing(jp_fetch, create_home: Path):
    code, job = await create(jp_fetch, {"name": "broken", "base": BASE_ID, "packages": ["iniconfig==99"]})
    assert code == 202
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "failed" and job["step"] == "resolve"  # planned before anything is installed
    assert "cannot be installed" in job["error"] and "iniconfig" in job["error"]
    # the first line (the panel's and the CLI's) says which package and why, not only "No solution found"
    first = job["error"].splitlines()[0]
    assert "there is no version of iniconfig==99" in first, job["error"]
    assert not (create_home / ".virtualenvs" / "broken").exists()
    kernels = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert f"{BASE_ID}.broken-py" not in kernels


async def test_without_inherit_ipykernel_is_installed_into_the_layer(jp_fetch, create_home: Path):
    """The layer cannot import the base's ipykernel: it is added to the install (here it fails offline, cleanly)."""
    _, job = await create(jp_fetch, {"name": "isolated", "base": BASE_ID, "inherit": False})
    job = await follow(jp_fetch, job["id"])
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "#   ipykernel" in log  # the requirement the server added
    assert job["state"] == "failed" and "ipykernel" in job["error"]  # the test wheelhouse has no ipykernel
    assert not (create_home / ".virtualenvs" / "isolated").exists()


async def test_shadowing_a_base_package_is_flagged(jp_fetch, jp_serverapp):
    """The classic layering trap: the layer's version of a base package wins, and the split says so."""
    _, job = await create(jp_fetch, {"name": "shadow", "base": BASE_ID, "packages": ["layenv_base_marker==2.0"]})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    _, env = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.shadow")
    assert env["packages"]["shadowed"] == [
        {"name": "layenv_base_marker", "layer_version": "2.0", "base_version": "1.0", "reason": "requested"}
    ]
    assert "layenv_base_marker" not in {p["name"] for p in env["packages"]["inherited"]}
    out = await run_in_kernel(jp_serverapp, f"{BASE_ID}.shadow-py", "import layenv_base_marker as m; print(m.WHERE)")
    assert out.strip() == "layer 2.0"


async def test_delete_removes_the_kernelspecs_sync_wrote(jp_fetch, jp_serverapp, jp_data_dir: Path):
    _, job = await create(jp_fetch, {"name": "synced", "base": BASE_ID})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    written, _ = sync_kernelspecs(jp_serverapp.kernel_spec_manager, str(jp_data_dir / "kernels"))
    assert f"{BASE_ID}.synced-py" in written and (jp_data_dir / "kernels" / f"{BASE_ID}.synced-py").is_dir()
    response = await jp_fetch("layenv", "environments", f"{BASE_ID}.synced", method="DELETE")
    assert response.code == 204
    assert not (jp_data_dir / "kernels" / f"{BASE_ID}.synced-py").exists()
    assert (jp_data_dir / "kernels" / f"{BASE_ID}-py").is_dir()  # the other synced kernels stay


async def test_the_listing_says_why_an_env_cannot_be_deleted(jp_fetch):
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    by_id = {env["id"]: env for env in listing["environments"]}
    assert "install root" in by_id["conda-base"]["delete_blocked_reason"]
    server = next(env for env in listing["environments"] if "python3" in {k["name"] for k in env["kernels"]})
    assert "this Jupyter server runs in" in server["delete_blocked_reason"]
    code, body = await fetch_json(jp_fetch, "environments", server["id"], method="DELETE")
    assert code == 403 and body["message"] == server["delete_blocked_reason"]
    _, job = await create(jp_fetch, {"name": "deletable", "base": BASE_ID})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    _, listing = await fetch_json(jp_fetch, "environments")
    assert {env["id"]: env for env in listing["environments"]}[f"{BASE_ID}.deletable"]["delete_blocked_reason"] is None
