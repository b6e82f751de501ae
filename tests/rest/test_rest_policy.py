"""The administrator's rules through a real server: each refusal is a 403 naming its rule and changes nothing;
GET /layenv/policy tells the caller what applies; the audit trail is read back from a real event log file."""

from __future__ import annotations

import grp
import json
import logging
import os
import shutil
import stat
from pathlib import Path

import pytest
from envtree import make_venv
from jupyter_server.auth import Authorizer
from layenv_api import BASE_ID, create, fetch_json, follow, wait_for_step
from wheelhouse import INICONFIG_VERSION

from jupyter_layenv.create.locks import EnvLock

VALID = {"name": "proj", "base": BASE_ID}


class ReadOnlyLayenv(Authorizer):
    """What a JupyterHub role without custom:jupyter_server:write:layenv amounts to: read, but no write."""

    def is_authorized(self, handler, user, action, resource) -> bool:  # type: ignore[no-untyped-def]
        return not (resource == "layenv" and action == "write")


@pytest.fixture
def event_log(tmp_path: Path) -> Path:
    return tmp_path / "events.jsonl"


@pytest.fixture
def policy(request) -> dict:
    """The LayenvPolicy section of a test's config, from indirect parametrization (plus other sections)."""
    config = dict(getattr(request, "param", {}))
    if config.pop("stall_installs", False):  # installs wait on an index that never answers
        index = request.getfixturevalue("stalling_index")
        config["LayenvService"] = {"index_url": index.url, "offline": False, "find_links": []}
    return config


@pytest.fixture
def jp_server_config(wheelhouse: Path, event_log: Path, policy: dict, create_home: Path) -> dict:
    handler = logging.FileHandler(event_log)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}, **policy.pop("ServerApp", {})},
        "EventLogger": {"handlers": [handler]},
        "LayenvService": {"find_links": [str(wheelhouse)], "offline": True, **policy.pop("LayenvService", {})},
        "LayenvKernelSpecManager": policy.pop("LayenvKernelSpecManager", {}),
        "LayenvPolicy": policy,
    }


def events(path: Path) -> list[dict]:
    """The jupyter_layenv events the server's event logger wrote to its file handler."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if "jupyter_layenv" in e.get("__schema__", "")]


def snapshot(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in (home / ".virtualenvs").rglob("*"))


REFUSALS = {
    "allowed_bases": ({"allowed_bases": ["/opt/conda/envs/*"]}, VALID),
    "create_in": ({"create_in": ["group"]}, VALID),
    "denied_packages": ({"denied_packages": ["ini*"]}, {**VALID, "packages": ["iniconfig"]}),
    "allowed_packages": ({"allowed_packages": ["numpy", "scikit-*"]}, {**VALID, "requirements": "iniconfig\n"}),
    "allow_direct_references": ({}, {**VALID, "packages": ["iniconfig @ https://example.com/iniconfig.whl"]}),
    "allowed_installer_options": ({}, {**VALID, "packages": ["--pre", "iniconfig"]}),
}


@pytest.mark.parametrize(("policy", "body"), REFUSALS.values(), ids=REFUSALS.keys(), indirect=["policy"])
async def test_each_rule_refuses_with_403_naming_it(jp_fetch, create_home: Path, event_log: Path, body: dict, request):
    rule = request.node.callspec.id
    before = snapshot(create_home)
    code, reply = await create(jp_fetch, body)
    assert code == 403, reply
    assert reply["reason"] == rule and f"LayenvPolicy.{rule}" in reply["message"], reply
    assert "administrator" in reply["message"]
    assert snapshot(create_home) == before
    [event] = events(event_log)
    assert (event["action"], event["env"], event["outcome"]) == ("create", "proj", "refused")
    assert f"LayenvPolicy.{rule}" in event["detail"]
    if rule == "allowed_bases":  # the listing says it too, so the panel does not offer that base
        code, listing = await fetch_json(jp_fetch, "environments")
        base = next(env for env in listing["environments"] if env["id"] == BASE_ID)
        assert base["layer_blocked_reason"] == reply["message"]


@pytest.mark.parametrize("policy", [{"max_envs_per_user": 1}], indirect=True)
async def test_max_envs_per_user(jp_fetch, create_home: Path):
    code, job = await create(jp_fetch, {**VALID, "name": "first"})
    assert code == 202 and (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    code, reply = await create(jp_fetch, {**VALID, "name": "second"})
    assert code == 403 and "LayenvPolicy.max_envs_per_user" in reply["message"] and "delete one" in reply["message"]
    assert not (create_home / ".virtualenvs" / "second").exists()
    code, policy = await fetch_json(jp_fetch, "policy")
    assert policy["envs_owned"] == 1 and policy["can_create"] is False
    assert "max_envs_per_user" in policy["create_refused"]
    # deleting one frees the quota
    code, _ = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.first", method="DELETE")
    assert code == 204
    assert (await fetch_json(jp_fetch, "policy"))[1]["can_create"] is True


@pytest.mark.parametrize("policy", [{"max_jobs": 1, "stall_installs": True}], indirect=True)
async def test_max_jobs(jp_fetch, create_home: Path):
    code, job = await create(jp_fetch, {**VALID, "packages": ["iniconfig"]})
    assert code == 202
    await wait_for_step(jp_fetch, job["id"], "resolve")
    code, reply = await create(jp_fetch, {**VALID, "name": "other"})
    assert code == 403 and "LayenvPolicy.max_jobs" in reply["message"] and "try again later" in reply["message"]
    assert not (create_home / ".virtualenvs" / "other").exists()
    assert (await fetch_json(jp_fetch, "policy"))[1]["active_jobs"] == 1
    assert (await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE"))[1]["state"] == "cancelled"
    code, job = await create(jp_fetch, {**VALID, "name": "other"})
    assert code == 202
    assert (await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE"))[1]["state"] == "cancelled"


@pytest.mark.parametrize("policy", [{"allowed_installer_options": ["--no-deps"]}], indirect=True)
async def test_an_allowed_installer_option_reaches_the_installer_as_our_flag(jp_fetch, create_home: Path):
    code, job = await create(jp_fetch, {**VALID, "packages": ["--no-deps", f"iniconfig=={INICONFIG_VERSION}"]})
    assert code == 202, job
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    command = next(line for line in log.splitlines() if line.startswith("$ ") and " pip install " in line)
    assert "--no-deps" in command.split() and "iniconfig" not in command  # packages go through the file
    code, reply = await create(jp_fetch, {**VALID, "name": "pre", "packages": ["--pre", "iniconfig"]})
    assert code == 403 and "LayenvPolicy.allowed_installer_options" in reply["message"]


@pytest.mark.parametrize("policy", [{"ServerApp": {"authorizer_class": ReadOnlyLayenv}}], indirect=True)
async def test_read_only_caller_lists_but_cannot_create_or_delete(jp_fetch, create_home: Path, event_log: Path):
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200 and any(env["id"] == BASE_ID for env in listing["environments"])
    code, policy = await fetch_json(jp_fetch, "policy")
    assert code == 200 and policy["can_create"] is False and policy["can_delete"] is False
    assert "custom:jupyter_server:write:layenv" in policy["create_refused"]
    assert all(not root["can_create"] for root in policy["roots"])
    code, reply = await create(jp_fetch, VALID)
    assert code == 403 and reply["reason"] == "not authorized"
    assert "custom:jupyter_server:write:layenv" in reply["message"] and "administrator" in reply["message"]
    assert snapshot(create_home) == []


@pytest.fixture
def group_root(create_home: Path) -> Path:
    """A group root owned by the group 'users' (gid 100 on Debian), setgid and group-writable; emptied first."""
    gid = grp.getgrnam("users").gr_gid
    root = create_home / "srv" / "layenv" / "physics"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.chown(root, -1, gid)
    root.chmod(0o2775)
    return root


@pytest.mark.parametrize(
    "policy", [{"LayenvKernelSpecManager": {"group_roots": ["~/srv/layenv/*"], "system_roots": ["~/miniconda3"]}}],
    indirect=True,
)  # fmt: skip
async def test_policy_lists_roots_and_a_group_env_is_shared_with_the_group(jp_fetch, group_root: Path):
    code, policy = await fetch_json(jp_fetch, "policy")
    assert code == 200 and policy["can_create"] is True and policy["create_refused"] is None
    roots = {root["id"]: root for root in policy["roots"]}
    assert roots["user"]["can_create"] and roots["user"]["scope"] == "user"
    assert roots["group:physics"] == {
        "id": "group:physics",
        "scope": "group",
        "path": str(group_root),
        "group": "users",
        "writable": True,
        "can_create": True,
        "refused": None,
    }
    system = next(root for root in policy["roots"] if root["scope"] == "system")
    assert system["can_create"] is False and "never writes" in system["refused"]
    assert policy["packages"]["direct_references"] is False and policy["index"]["offline"] is True

    # the base is in a system root now; creating there is refused, creating in the group root works
    code, reply = await create(jp_fetch, {**VALID, "root": system["id"]})
    assert code == 403 and "never writes" in reply["message"]
    code, reply = await create(jp_fetch, {**VALID, "root": "group:nowhere"})
    assert code == 400 and "group:physics" in reply["message"]
    code, job = await create(jp_fetch, {**VALID, "root": "group:physics"})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    env_path = group_root / "proj"
    gid = group_root.stat().st_gid
    for directory in [env_path, *(p for p in env_path.rglob("*") if p.is_dir() and not p.is_symlink())]:
        mode = directory.stat().st_mode
        assert directory.stat().st_gid == gid and mode & stat.S_ISGID and mode & stat.S_IWGRP, directory
    assert json.loads((env_path / "layenv.json").read_text())["creator"]
    code, listing = await fetch_json(jp_fetch, "environments")
    env = next(e for e in listing["environments"] if e["path"] == str(env_path))
    assert (env["scope"], env["group"], env["owner"]) == ("group", "users", "root")
    assert env["creator"] and env["writable"] and env["delete_blocked_reason"] is None
    base = next(e for e in listing["environments"] if e["id"] == BASE_ID)
    assert base["scope"] == "system"


async def test_a_dead_builders_half_made_env_is_cleaned_a_live_ones_is_not(
    jp_fetch, create_home: Path, event_log: Path
):
    root = create_home / ".virtualenvs"
    dead = make_venv(root / "dead", tool="uv")
    (dead / ".layenv-building").write_text("0" * 32)  # its builder died: nobody holds the lock
    alive = make_venv(root / "alive", tool="uv")
    (alive / ".layenv-building").write_text("1" * 32)
    lock = EnvLock.try_acquire(str(alive))  # a live build (another server, say) holds its lock
    assert lock is not None
    try:
        code, listing = await fetch_json(jp_fetch, "environments")
        assert code == 200
        assert not dead.exists()
        assert alive.exists()
        skipped = {s["path"]: s["reason"] for s in listing["skipped"]}
        assert str(dead) not in skipped and skipped[str(alive)].startswith("being created")
        [event] = events(event_log)
        assert (event["action"], event["env"], event["outcome"], event["path"]) == (
            "cleanup",
            "dead",
            "succeeded",
            str(dead),
        )
    finally:
        lock.release()
    await fetch_json(jp_fetch, "environments")  # now it is free: whoever lists next cleans it
    assert not alive.exists()


async def test_every_action_is_in_the_event_log(jp_fetch, create_home: Path, event_log: Path):
    code, job = await create(jp_fetch, VALID)
    assert code == 202 and (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    await jp_fetch("layenv", "environments", f"{BASE_ID}.proj", "export", params={"format": "requirements.txt"})
    assert (await create(jp_fetch, VALID))[0] == 409
    assert (await fetch_json(jp_fetch, "environments", f"{BASE_ID}.proj", method="DELETE"))[0] == 204
    recorded = [(e["action"], e["env"], e["outcome"]) for e in events(event_log)]
    assert recorded == [
        ("create", "proj", "succeeded"),
        ("export", f"{BASE_ID}.proj", "succeeded"),
        ("create", "proj", "refused"),
        ("delete", f"{BASE_ID}.proj", "succeeded"),
    ]
    assert all(e["user"] for e in events(event_log))
