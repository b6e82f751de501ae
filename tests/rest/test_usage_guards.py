"""A cleanup during a running create job leaves the job and its env alone; LayenvPolicy.max_bytes_per_user refuses a
create with a 403 naming the caller's usage and the limit, and writes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from envtree import make_layered_env
from layenv_api import BASE_ID, StallingIndex, create, fetch_json, follow, processes_mentioning, wait_for_step

from jupyter_layenv.usage import sizing

LIMIT = 1000


def shown(count: int) -> str:
    """A size as the quota's refusal writes it: bytes, then KiB, MiB with one decimal."""
    if count < 1024:
        return f"{count} bytes"
    return f"{count / 1024:.1f} KiB" if count < 1024 * 1024 else f"{count / 1024 / 1024:.1f} MiB"


@pytest.fixture
def jp_server_config(stalling_index: StallingIndex) -> dict:
    """Installs wait on an index that never answers: a job stays running as long as the test needs."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"index_url": stalling_index.url},
        "LayenvPolicy": {"max_bytes_per_user": LIMIT},
    }


async def test_clean_during_a_running_create_leaves_the_job_and_its_env_alone(jp_fetch, clean_create_home: Path):
    path = clean_create_home / ".virtualenvs" / "building"
    code, job = await create(jp_fetch, {"name": "building", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202, job
    job = await wait_for_step(jp_fetch, job["id"], "resolve")  # the resolver waits on the index
    for _ in range(100):  # the installer starts, then waits on the index
        if processes_mentioning(str(path)):
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "running" and processes_mentioning(str(path))
    try:
        body = {"unused_days": 0, "dry_run": True}
        code, dry = await fetch_json(jp_fetch, "clean", method="POST", body=json.dumps(body))
        assert code == 200 and dry["removed"] == [], dry  # (and nothing else of this user's would go either)
        code, done = await fetch_json(jp_fetch, "clean", method="POST", body=json.dumps({"unused_days": 0}))
        assert code == 200 and done["removed"] == []
        _, job = await fetch_json(jp_fetch, "jobs", job["id"])
        assert job["state"] == "running" and path.is_dir() and processes_mentioning(str(path))
    finally:
        await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
        await follow(jp_fetch, job["id"])


async def test_a_create_over_the_size_quota_is_refused_naming_usage_and_limit(jp_fetch, clean_create_home: Path):
    base = clean_create_home / "miniconda3" / "envs" / "py311_ai"
    mine = make_layered_env(base, clean_create_home / ".virtualenvs" / "mine", tool="uv")
    used = sizing.measure(str(mine)).size_bytes
    assert used > LIMIT
    before = sorted(p.name for p in (clean_create_home / ".virtualenvs").iterdir())
    code, reply = await create(jp_fetch, {"name": "more", "base": BASE_ID})
    assert code == 403, reply
    assert reply["reason"] == "max_bytes_per_user"
    assert f"your environments use {shown(used)} (at most {LIMIT} bytes)" in reply["message"]
    assert "LayenvPolicy.max_bytes_per_user" in reply["message"] and "jupyter layenv clean" in reply["message"]
    assert sorted(p.name for p in (clean_create_home / ".virtualenvs").iterdir()) == before

    for _ in range(100):  # GET policy counts the sizes measured so far (it never waits for a walk)
        _, policy = await fetch_json(jp_fetch, "policy")
        if policy["bytes_owned"] == used:
            break
        await asyncio.sleep(0.1)
    assert (policy["max_bytes_per_user"], policy["bytes_owned"], policy["can_create"]) == (LIMIT, used, False)
    assert policy["create_refused"].startswith(f"your environments use {shown(used)}")

    mine_json = next(e for e in (await fetch_json(jp_fetch, "environments"))[1]["environments"]
                     if e["path"] == str(mine))  # fmt: skip
    code, _ = await fetch_json(jp_fetch, "environments", mine_json["id"], method="DELETE")
    assert code == 204
    _, policy = await fetch_json(jp_fetch, "policy")
    assert policy["bytes_owned"] == 0 and policy["can_create"] is True
    code, job = await create(jp_fetch, {"name": "more", "base": BASE_ID})  # under the limit again: accepted
    assert code == 202, job
    await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    await follow(jp_fetch, job["id"])
