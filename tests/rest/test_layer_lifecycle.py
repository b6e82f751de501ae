"""A layer's life after its create (issue 9, parts 2 and 3): change its packages (dry run, atomic, refusals),
its revisions, restore one, export its lock. A real base, real uv, a real server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from envtree import layer_dists
from layenv_api import BASE_ID, create, fetch_json, follow, run_in_kernel

ENV = f"{BASE_ID}.life"


@pytest.fixture(scope="module")
def wheelhouse(faithful_wheelhouse: Path) -> Path:
    return faithful_wheelhouse


async def change(jp_fetch, body: dict, env: str = ENV) -> tuple[int, dict]:
    return await fetch_json(jp_fetch, "environments", env, "packages", method="POST", body=json.dumps(body))


async def changed(jp_fetch, body: dict, env: str = ENV) -> dict:
    code, job = await change(jp_fetch, body, env)
    assert code == 202, job
    return await follow(jp_fetch, job["id"])


async def make_life(jp_fetch, create_home: Path) -> Path:
    code, job = await create(jp_fetch, {"name": "life", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202 and (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    return create_home / ".virtualenvs" / "life"


async def test_a_change_and_a_restore_read_discovery_off_the_event_loop(
    jp_fetch, jp_serverapp, create_home: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: planning the change job on the event loop (``LayerLifecycle._plan``: is the layer a kernel, where
    is uv), where discovery's root probes may wait up to ``root_timeout`` on a hung mount."""
    await make_life(jp_fetch, create_home)
    discovery_class = type(jp_serverapp.kernel_spec_manager.discovery)
    discover = discovery_class.discover
    read_on: list[threading.Thread] = []

    def recording_discover(self, **options):
        read_on.append(threading.current_thread())
        return discover(self, **options)

    monkeypatch.setattr(discovery_class, "discover", recording_discover)
    code, job = await change(jp_fetch, {"add": ["nbthing"]})
    assert code == 202, job
    monkeypatch.setattr(discovery_class, "discover", discover)  # the job's own reads are its business
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    monkeypatch.setattr(discovery_class, "discover", recording_discover)
    code, job = await fetch_json(jp_fetch, "environments", ENV, "revisions", "1", "restore", method="POST", body="")
    assert code == 202, job
    monkeypatch.setattr(discovery_class, "discover", discover)
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    assert read_on and threading.main_thread() not in read_on, read_on


async def test_change_dry_run_revisions_restore_and_lock(jp_fetch, jp_serverapp, create_home: Path):
    life = await make_life(jp_fetch, create_home)
    # a dry run: the plan, nothing written
    before = sorted(p.name for p in life.rglob("*"))
    code, plan = await change(jp_fetch, {"add": ["nbthing"], "dry_run": True})
    assert code == 200, plan
    assert plan["install"] == [{"name": "nbthing", "version": "1.0"}] and plan["remove"] == []
    assert plan["shadow"] == []
    kept = {p["name"].replace("-", "_") for p in plan["kept_from_base"]}
    assert {"jupyter_core", "traitlets"} <= kept
    assert sorted(p.name for p in life.rglob("*")) == before

    # the change: a job; only what the base lacks goes in
    job = await changed(jp_fetch, {"add": ["nbthing"]})
    assert job["state"] == "succeeded", job
    assert layer_dists(life) == {"iniconfig", "nbthing"}
    out = await run_in_kernel(jp_serverapp, f"{ENV}-py", "import nbthing; print(nbthing.WHERE)")
    assert out.strip() == "layer"

    # removing what another layer package needs is refused with its name, unless forced
    code, body = await change(jp_fetch, {"remove": ["iniconfig"]})
    assert code == 409 and "nbthing" in body["message"], body
    code, body = await change(jp_fetch, {"remove": ["traitlets"]})
    assert code == 409 and "base" in body["message"], body
    assert layer_dists(life) == {"iniconfig", "nbthing"}

    # history, newest first, with locks and the base's fingerprint
    code, history = await fetch_json(jp_fetch, "environments", ENV, "revisions")
    assert code == 200
    revisions = history["revisions"]
    assert [r["revision"] for r in revisions] == [2, 1]
    assert revisions[0]["request"]["add"] == ["nbthing"] and revisions[1]["request"]["action"] == "create"
    assert {e["name"] for e in revisions[0]["lock"]} == {"iniconfig", "nbthing"}
    assert all(e["hashes"] for e in revisions[0]["lock"])  # from the resolver
    assert revisions[0]["base_fingerprint"] and revisions[0]["base_changed"] is False

    # the lock export: pinned, with hashes
    response = await jp_fetch("layenv", "environments", ENV, "export", params={"format": "lock"})
    lock = [line for line in response.body.decode().splitlines() if not line.startswith("#")]
    assert [line.split()[0] for line in lock] == ["iniconfig==2.0.0", "nbthing==1.0"]
    assert all("--hash=sha256:" in line for line in lock)

    # restore revision 1: exactly its lock again, recorded as revision 3
    code, job = await fetch_json(jp_fetch, "environments", ENV, "revisions", "1", "restore", method="POST", body="")
    assert code == 202, job
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    assert layer_dists(life) == {"iniconfig"}
    _, history = await fetch_json(jp_fetch, "environments", ENV, "revisions")
    newest = history["revisions"][0]
    assert newest["revision"] == 3 and newest["request"] == {"action": "restore", "revision": 1}
    assert newest["lock"] == history["revisions"][2]["lock"]
    code, body = await fetch_json(jp_fetch, "environments", ENV, "revisions", "9", "restore", method="POST", body="")
    assert code == 404 and "1, 2, 3" in body["message"]


async def test_a_change_that_fails_midway_leaves_the_layer_as_before(jp_fetch, jp_serverapp, create_home: Path):
    life = await make_life(jp_fetch, create_home)
    assert (await changed(jp_fetch, {"add": ["nbthing"]}))["state"] == "succeeded"
    files = sorted(str(p.relative_to(life)) for p in life.rglob("*") if "__pycache__" not in p.parts)
    # nbthing is uninstalled first, then the broken wheel's install fails: everything is put back
    job = await changed(jp_fetch, {"remove": ["nbthing"], "add": ["brokenwheel"]})
    assert job["state"] == "failed" and job["step"] == "install", job
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "== uninstall" in log and "restored" in log
    assert sorted(str(p.relative_to(life)) for p in life.rglob("*") if "__pycache__" not in p.parts) == files
    out = await run_in_kernel(jp_serverapp, f"{ENV}-py", "import nbthing; print(nbthing.WHERE)")
    assert out.strip() == "layer"
    _, history = await fetch_json(jp_fetch, "environments", ENV, "revisions")
    assert [r["revision"] for r in history["revisions"]] == [2, 1]  # a failed change is no revision


async def test_change_refusals_write_nothing(jp_fetch, jp_serverapp, create_home: Path):
    life = await make_life(jp_fetch, create_home)
    for body, status, words in [
        ({}, 400, "nothing to change"),
        ({"add": ["--index-url", "http://evil"]}, 400, "installer option"),
        ({"add": ["ok"], "oops": 1}, 400, "unknown field"),
        ({"remove": ["a b"]}, 400, "not a package name"),
        ({"add": ["needsnew"], "dry_run": True}, 409, "pick another base"),
        ({"remove": ["absent"]}, 404, "not installed"),
    ]:
        code, reply = await change(jp_fetch, body)
        assert code == status and words in reply["message"], (body, code, reply)
    code, reply = await change(jp_fetch, {"add": ["x"]}, env=BASE_ID)
    assert code == 403 and "layers and venvs" in reply["message"]
    jp_serverapp.web_app.settings["layenv_service"].policy.protected_packages = ["layenv_base_marker"]
    code, reply = await change(jp_fetch, {"add": ["layenv_base_marker==2.0"]})
    assert code == 403 and "LayenvPolicy.protected_packages" in reply["message"]
    assert layer_dists(life) == {"iniconfig"}


async def test_a_change_with_pip_is_faithful_too(jp_fetch, jp_serverapp, create_home: Path):
    life = await make_life(jp_fetch, create_home)
    jp_serverapp.web_app.settings["layenv_service"].installer = "pip"
    code, plan = await change(jp_fetch, {"add": ["nbthing"], "dry_run": True})
    assert code == 200 and plan["install"] == [{"name": "nbthing", "version": "1.0"}], plan
    job = await changed(jp_fetch, {"add": ["nbthing"]})
    assert job["state"] == "succeeded", job
    assert layer_dists(life) == {"iniconfig", "nbthing"}
    job = await changed(jp_fetch, {"remove": ["nbthing"]})
    assert job["state"] == "succeeded" and layer_dists(life) == {"iniconfig"}, job


async def test_a_venv_that_is_no_kernel_can_be_changed(jp_fetch, create_home: Path):
    from envtree import make_venv

    venv = make_venv(create_home / ".virtualenvs" / "plainvenv", tool="uv")
    _, listing = await fetch_json(jp_fetch, "environments")
    env = next(e for e in listing["environments"] if e["path"] == str(venv))
    assert env["kind"] == "venv" and env["kernels"] == []
    job = await changed(jp_fetch, {"add": ["iniconfig"]}, env=env["id"])
    assert job["state"] == "succeeded", job
    assert layer_dists(venv) == {"iniconfig"}


async def test_revisions_say_why_there_are_none(jp_fetch, clean_create_home: Path):
    """A Conda env keeps no revisions (layers and venvs do), and a layer made by hand has none: the answer says which,
    for the panel and the CLI alike; a layer with revisions has no such reason."""
    code, answer = await fetch_json(jp_fetch, "environments", BASE_ID, "revisions")
    assert code == 200 and answer["revisions"] == [], answer
    assert answer["none_reason"] == (
        "py311_ai is a Conda environment: revisions are kept for layers and venvs (its export with "
        "format=explicit gives its exact Conda packages)"
    ), answer
    path = await make_life(jp_fetch, clean_create_home)
    code, answer = await fetch_json(jp_fetch, "environments", ENV, "revisions")
    assert code == 200 and [r["revision"] for r in answer["revisions"]] == [1] and answer["none_reason"] is None
    for record in (path / ".layenv-revisions").iterdir():
        record.unlink()
    code, answer = await fetch_json(jp_fetch, "environments", ENV, "revisions")
    assert answer == {"revisions": [], "none_reason": "life has no revisions (made before jupyter_layenv "
                                                        "recorded them, or not by it)"}, answer  # fmt: skip
