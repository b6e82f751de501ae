"""last_used: every kernel the server starts is recorded, per user in the data dir, for group envs in the group
root where every member sees it; tested with real kernels started through the server's kernel manager."""

from __future__ import annotations

import asyncio
import getpass
import grp
import json
import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from envtree import make_layered_env
from layenv_api import fetch_json, run_in_kernel


@pytest.fixture
def group_root(clean_create_home: Path) -> Path:
    """A group root owned by the group 'users', setgid and group-writable; emptied first."""
    root = clean_create_home / "srv" / "layenv" / "physics"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.chown(root, -1, grp.getgrnam("users").gr_gid)
    root.chmod(0o2775)
    return root


@pytest.fixture
def jp_server_config() -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvKernelSpecManager": {"group_roots": ["~/srv/layenv/*"]},
    }


async def env_json(jp_fetch, path: Path) -> dict:
    _, listing = await fetch_json(jp_fetch, "environments")
    return next(env for env in listing["environments"] if env["path"] == str(path))


async def used(jp_fetch, path: Path, after: str | None, timeout: float = 30) -> dict:
    """The env once its last_used moved past ``after`` (the record is written off the event loop)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        env = await env_json(jp_fetch, path)
        if env["last_used"] is not None and (after is None or env["last_used"] > after):
            return env
        await asyncio.sleep(0.1)
    raise AssertionError(f"no kernel start recorded for {path}: {env}")


async def test_kernel_starts_set_last_used_per_user_and_in_the_group_root(
    jp_fetch, jp_serverapp, jp_data_dir: Path, clean_create_home: Path, group_root: Path
):
    base = clean_create_home / "miniconda3" / "envs" / "py311_ai"
    mine = make_layered_env(base, clean_create_home / ".virtualenvs" / "used", tool="uv")
    shared = make_layered_env(base, group_root / "shared", tool="uv")
    ours, theirs = await env_json(jp_fetch, mine), await env_json(jp_fetch, shared)
    assert ours["last_used"] is None and theirs["last_used"] is None and theirs["scope"] == "group"

    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert await run_in_kernel(jp_serverapp, ours["kernels"][0]["name"], "print(6 * 7)") == "42\n"
    ours = await used(jp_fetch, mine, None)
    assert before <= datetime.fromisoformat(ours["last_used"]) <= datetime.now(timezone.utc)
    assert ours["last_used_by"] == getpass.getuser()
    kept = json.loads((jp_data_dir / "layenv" / "last_used.json").read_text())
    assert kept[str(mine)]["time"] == ours["last_used"]
    _, one = await fetch_json(jp_fetch, "environments", ours["id"])
    assert one["last_used"] == ours["last_used"]

    await run_in_kernel(jp_serverapp, theirs["kernels"][0]["name"], "pass")
    theirs = await used(jp_fetch, shared, None)
    usage_dir = group_root / ".layenv-usage"
    record = usage_dir / f"{getpass.getuser()}.json"
    assert json.loads(record.read_text())["shared"]["time"] == theirs["last_used"]  # in the root, not the data dir
    assert str(shared) not in json.loads((jp_data_dir / "layenv" / "last_used.json").read_text())
    assert usage_dir.stat().st_mode & (stat.S_ISGID | stat.S_IWGRP) == stat.S_ISGID | stat.S_IWGRP
    assert record.stat().st_mode & stat.S_IROTH and record.stat().st_gid == group_root.stat().st_gid

    # another member's later start, written by their server into their own file, is what every member sees
    later = (datetime.fromisoformat(theirs["last_used"]) + timedelta(minutes=5)).isoformat(timespec="seconds")
    (usage_dir / "alice.json").write_text(json.dumps({"shared": {"time": later, "user": "alice"}}))
    theirs = await used(jp_fetch, shared, theirs["last_used"])
    assert (theirs["last_used"], theirs["last_used_by"]) == (later, "alice")
    assert (await env_json(jp_fetch, mine))["last_used"] == ours["last_used"]  # a start of one env only
