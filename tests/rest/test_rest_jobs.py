"""Jobs: cancel mid-install kills the installer and removes the half-made env; the queue; 409s; the audit trail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from layenv_api import BASE_ID, StallingIndex, create, fetch_json, follow, processes_mentioning, wait_for_step


@pytest.fixture
def jp_server_config(stalling_index: StallingIndex) -> dict:
    """Installs go to an index that never answers; one job at a time, so a second one waits in the queue."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"index_url": stalling_index.url, "job_concurrency": 1},
    }


async def test_cancel_mid_install_kills_the_installer_and_removes_the_env(jp_fetch, create_home: Path, audit):
    path = create_home / ".virtualenvs" / "slow"
    code, job = await create(jp_fetch, {"name": "slow", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202
    job = await wait_for_step(jp_fetch, job["id"], "resolve")  # the resolver waits on the index
    assert job["state"] == "running" and job["step"] == "resolve"
    await asyncio.sleep(0.5)  # uv is now waiting on the index
    assert processes_mentioning(str(path)), "the installer should be running"
    assert path.exists()

    # a delete while the job works on the env is refused
    code, body = await fetch_json(jp_fetch, "environments", f"{BASE_ID}.slow", method="DELETE")
    assert code == 409 and body["message"].startswith("a job is working on slow;"), body

    code, cancelled = await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    assert code == 200 and cancelled["state"] == "cancelled"
    assert not path.exists()
    assert processes_mentioning(str(path)) == []
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "uv pip compile" in log and "removed the half-made" in log and "== cancelled" in log
    # cancelling again: it is over
    code, body = await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    assert code == 409 and "already cancelled" in body["message"]
    outcomes = [(e["action"], e["env"], e["outcome"]) for e in audit]
    assert ("cancel", "slow", "succeeded") in outcomes and ("create", "slow", "cancelled") in outcomes


async def test_queue_and_cancel_a_queued_job(jp_fetch, create_home: Path):
    _, first = await create(jp_fetch, {"name": "first", "base": BASE_ID, "packages": ["iniconfig"]})
    await wait_for_step(jp_fetch, first["id"], "resolve")
    code, second = await create(jp_fetch, {"name": "second", "base": BASE_ID})
    assert code == 202
    await asyncio.sleep(0.3)
    _, second = await fetch_json(jp_fetch, "jobs", second["id"])
    assert second["state"] == "queued"  # concurrency 1: waits for the first
    _, jobs = await fetch_json(jp_fetch, "jobs")
    assert [j["name"] for j in jobs["jobs"]] == ["second", "first"]
    _, cancelled = await fetch_json(jp_fetch, "jobs", second["id"], method="DELETE")
    assert cancelled["state"] == "cancelled" and not (create_home / ".virtualenvs" / "second").exists()
    _, cancelled = await fetch_json(jp_fetch, "jobs", first["id"], method="DELETE")
    assert cancelled["state"] == "cancelled" and not (create_home / ".virtualenvs" / "first").exists()


async def test_two_concurrent_creates_of_one_name(jp_fetch, create_home: Path, audit):
    body = {"name": "twin", "base": BASE_ID}
    results = await asyncio.gather(*(create(jp_fetch, body) for _ in range(2)))
    codes = sorted(code for code, _ in results)
    assert codes == [202, 409], results
    job = next(reply for code, reply in results if code == 202)
    refused = next(reply for code, reply in results if code == 409)
    # the in-process check answers, not the env lock (which would say "by another process")
    assert refused == {"message": "twin is being created right now; wait for that job or pick another name",
                       "reason": "exists or busy"}  # fmt: skip
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    # and once it exists, a third create is refused at once too
    code, again = await create(jp_fetch, body)
    assert code == 409 and "exists already" in again["message"]
    assert len(list((create_home / ".virtualenvs").iterdir())) == 2  # twin and the lock dir
    outcomes = sorted(e["outcome"] for e in audit if e["action"] == "create")
    assert outcomes == ["refused", "refused", "succeeded"]
