"""Group roots shared by real Unix users, each with a real Jupyter server running as that user.

alice and bob are in one group, carol is not (tests/unixusers.py makes the accounts; root only). Their servers
share one group root (``srv/layenv/physics``, mode 2770) and one system root (a Conda install with the base).
What is checked: who sees and deletes what; two servers creating and deleting the same names at once (and
deleting one env at once); a build whose server crashed is cleaned by the other server, never while it is alive;
each server's discovery cache sees the other's changes on its next listing; the creator members see.

Installs come from a package index served by the test on loopback (no network) that can hold a build back.
Runs as root only (it makes users): skipped otherwise, with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import pwd
import random
import shutil
import signal
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from jupyter_process import JupyterProcess
from layenv_api import processes_mentioning
from mounts import read_only
from unixusers import (  # noqa: F401  (fixtures)
    SharedArea,
    Users,
    group_sharing_problems,
    requires_root,
    shared_area_fixture,
    start_server,
    tree_modes,
    unix_users_fixture,
)

from jupyter_layenv.model import BUILDING_MARKER, PROVENANCE

pytestmark = requires_root

GROUP_ROOT = "group:physics"
LOCKS = ".layenv-locks"


# ------------------------------------------------------------------------------------------ a package index


class GatedIndex:
    """A PEP 503 package index on loopback serving a wheelhouse; while closed, project pages are held back.

    An install from it waits (its build is alive, its lock held) until the test opens it, or kills the build.
    """

    def __init__(self, wheelhouse: Path) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0
        self._count = threading.Lock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with contextlib.suppress(OSError):
                    index._answer(self, wheelhouse, body=True)

            def do_HEAD(self) -> None:
                with contextlib.suppress(OSError):
                    index._answer(self, wheelhouse, body=False)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _answer(self, request: BaseHTTPRequestHandler, wheelhouse: Path, body: bool) -> None:
        parts = [p for p in request.path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "simple":
            if body and not self.gate.is_set():
                with self._count:
                    self.waiting += 1
                self.gate.wait(120)
            wheels = sorted(wheelhouse.glob(f"{parts[1].replace('-', '_')}-*.whl"))
            links = "".join(
                f'<a href="/files/{html.escape(w.name)}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">'
                f"{html.escape(w.name)}</a>\n"
                for w in wheels
            )
            page = f"<html><body>\n{links}</body></html>\n".encode()
            self._send(request, 200 if wheels else 404, page, "text/html", body)
        elif len(parts) == 2 and parts[0] == "files" and (wheelhouse / parts[1]).is_file():
            self._send(request, 200, (wheelhouse / parts[1]).read_bytes(), "application/octet-stream", body)
        else:
            self._send(request, 404, b"not found\n", "text/plain", body)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, content: bytes, kind: str, body: bool) -> None:
        request.send_response(code)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(content)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        if body:
            request.wfile.write(content)

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        self.waiting = 0
        self.gate.clear()
        try:
            yield
        finally:
            self.gate.set()

    def wait_for_request(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.waiting == 0:
            assert time.monotonic() < deadline, "the installer never asked the index"
            time.sleep(0.05)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------------ fixtures


@dataclass
class Servers:
    alice: JupyterProcess
    bob: JupyterProcess
    carol: JupyterProcess
    base_id: str


@pytest.fixture(scope="module")
def index(shared_area: SharedArea) -> Iterator[GatedIndex]:
    gated = GatedIndex(shared_area.wheelhouse)
    yield gated
    gated.close()


def server_settings(index: GatedIndex) -> dict[str, Any]:
    """Installs come from the gated index on loopback (hermetic: no network), so a test can hold a build."""
    return {"offline": False, "find_links": [], "index_url": index.url}


@pytest.fixture(scope="module")
def servers(shared_area: SharedArea, unix_users: Users, index: GatedIndex) -> Iterator[Servers]:
    started: list[JupyterProcess] = []
    try:
        for user in unix_users.all:
            started.append(start_server(shared_area, user, "main", wait=False, **server_settings(index)))
        for server in started:
            server.wait_ready()
        listing = started[0].get("layenv/environments")
        base = next((e for e in listing["environments"] if e["path"] == str(shared_area.base)), None)
        assert base is not None, f"the shared base {shared_area.base} is not listed: {listing}"
        yield Servers(*started, base_id=base["id"])
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def group_root(shared_area: SharedArea) -> Iterator[Path]:
    """The group root, emptied after the test (as root) so each test starts from nothing."""
    yield shared_area.group_root
    for entry in shared_area.group_root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------- helpers


def listing(server: JupyterProcess) -> dict[str, Any]:
    return server.get("layenv/environments")


def envs_in(listed: dict[str, Any], root: Path) -> dict[str, dict[str, Any]]:
    """The listed envs directly in ``root``, by name."""
    found = [env for env in listed["environments"] if os.path.dirname(env["path"]) == str(root)]
    by_name = {env["name"]: env for env in found}
    assert len(by_name) == len(found), f"an env is listed twice: {found}"
    return by_name


def create(server: JupyterProcess, name: str, base_id: str, **body: Any) -> tuple[int, dict[str, Any]]:
    return server.request("POST", "layenv/environments", {"name": name, "base": base_id, **body})


def job_log(server: JupyterProcess, job_id: str) -> str:
    return server.get(f"layenv/jobs/{job_id}/log")


def create_in_group(server: JupyterProcess, name: str, base_id: str, **body: Any) -> dict[str, Any]:
    """Create ``name`` in the group root and wait for it: the succeeded job."""
    code, job = create(server, name, base_id, root=GROUP_ROOT, **body)
    assert code == 202, (code, job)
    job = server.follow(job["id"])
    assert job["state"] == "succeeded", f"{job}\n{job_log(server, job['id'])}"
    return job


def kernel_names(server: JupyterProcess) -> set[str]:
    return set(server.get("api/kernelspecs")["kernelspecs"])


def half_made(root: Path) -> list[Path]:
    return [entry for entry in root.iterdir() if (entry / BUILDING_MARKER).exists()]


# --------------------------------------------------------------------------------------------------- tests


def test_each_server_runs_as_its_user_and_lists_the_system_base(
    servers: Servers, unix_users: Users, shared_area: SharedArea
):
    for server, user in zip((servers.alice, servers.bob, servers.carol), unix_users.all, strict=True):
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert uids == [str(user.uid)] * 4, f"{user.name}'s server runs as uid {uids}"
        by_path = {env["path"]: env for env in listing(server)["environments"]}
        base = by_path[str(shared_area.base)]
        assert base["id"] == servers.base_id
        assert base["scope"] == "system" and base["owner"] == "root" and base["writable"] is False
        assert base["kernels"] and base["delete_blocked_reason"]
        # the Conda root has no ipykernel and is the administrator's: no advice to pip install into it
        root_env = by_path[str(shared_area.conda_root)]
        assert root_env["kernels"] == [] and root_env["writable"] is False
        assert "pip install" not in root_env["skipped_reason"], root_env
        assert "create a layer on it with inherit" in root_env["skipped_reason"], root_env
        code, body = server.request("DELETE", f"layenv/environments/{servers.base_id}")
        assert code == 403, (code, body)
        # the administrator's base, in a system root: never ours to delete, and no advice to remove it (it said
        # "a Conda environment of another user (uid 0) … its owner can run `conda remove -p … --all`")
        assert "system environment" in body["message"] and "conda remove" not in body["message"], body
        assert base["delete_blocked_reason"] == body["message"]
        assert shared_area.base.is_dir()
        roots = {root["id"]: root for root in server.get("layenv/policy")["roots"]}
        system = [root for root in roots.values() if root["scope"] == "system"]
        assert [root["path"] for root in system] == [str(shared_area.conda_root)]
        assert system[0]["can_create"] is False and system[0]["refused"]
        code, body = create(server, "nope", servers.base_id, root=system[0]["id"])
        assert code == 403 and "never" in body["message"], (code, body)
        assert roots["user"]["path"] == str(user.home / ".virtualenvs") and roots["user"]["can_create"] is True


def test_members_see_and_delete_the_groups_envs_the_outsider_does_not(
    servers: Servers, unix_users: Users, shared_area: SharedArea, group_root: Path
):
    alice, carol = unix_users.alice, unix_users.carol
    job = create_in_group(servers.alice, "shared1", servers.base_id)
    path = group_root / "shared1"
    assert job["environment"]["path"] == str(path)
    env_id = job["environment"]["id"]

    # on disk: the group's, setgid and group-writable all the way down, created by alice
    st = path.stat()
    assert st.st_uid == alice.uid and st.st_gid == unix_users.gid
    assert st.st_mode & stat.S_ISGID and st.st_mode & stat.S_IWGRP, stat.filemode(st.st_mode)
    assert group_sharing_problems(path, unix_users.gid) == []
    provenance = json.loads((path / PROVENANCE).read_text())
    assert provenance["creator_uid"] == alice.uid and provenance["creator"]
    assert not (path / BUILDING_MARKER).exists()

    # both members list it, with the same facts, and may delete it
    for server in (servers.alice, servers.bob):
        env = envs_in(listing(server), group_root)["shared1"]
        assert env["id"] == env_id and env["scope"] == "group"
        assert env["owner"] == alice.name and env["group"] == unix_users.group
        assert env["creator"] == provenance["creator"]
        assert env["writable"] is True and env["delete_blocked_reason"] is None, env
        assert f"{env_id}-py" in kernel_names(server)
        roots = {root["id"]: root for root in server.get("layenv/policy")["roots"]}
        assert roots[GROUP_ROOT]["path"] == str(group_root) and roots[GROUP_ROOT]["can_create"] is True
        assert roots[GROUP_ROOT]["group"] == unix_users.group

    # the outsider: not listed, not found, cannot create there, and nothing changes on disk
    before = sorted(p.name for p in group_root.iterdir())
    carol_listing = listing(servers.carol)
    assert not [e for e in carol_listing["environments"] if e["path"].startswith(str(shared_area.root / "srv"))]
    assert f"{env_id}-py" not in kernel_names(servers.carol)
    code, body = servers.carol.request("DELETE", f"layenv/environments/{env_id}")
    assert code == 404, (code, body)
    code, body = servers.carol.request("GET", f"layenv/environments/{env_id}")
    assert code == 404, (code, body)
    carol_roots = {root["id"]: root for root in servers.carol.get("layenv/policy")["roots"]}
    assert GROUP_ROOT not in carol_roots or carol_roots[GROUP_ROOT]["can_create"] is False, carol_roots
    code, body = create(servers.carol, "intruder", servers.base_id, root=GROUP_ROOT)
    assert code == 403, (code, body)
    assert "LayenvPolicy" in body["message"] or "member" in body["message"], body
    assert sorted(p.name for p in group_root.iterdir()) == before
    assert path.is_dir() and carol.uid not in {p.stat().st_uid for p in group_root.iterdir()}

    # envs in a user root stay private: alice's own is not bob's to see
    code, own = create(servers.alice, "private1", servers.base_id)
    assert code == 202, own
    own = servers.alice.follow(own["id"])
    assert own["state"] == "succeeded" and own["environment"]["path"] == str(alice.home / ".virtualenvs/private1")
    assert own["environment"]["scope"] == "user"
    assert own["environment"]["id"] not in {e["id"] for e in listing(servers.bob)["environments"]}
    code, body = servers.bob.request("DELETE", f"layenv/environments/{own['environment']['id']}")
    assert code == 404, (code, body)

    # the other member deletes alice's group env; alice's next listing no longer has it
    code, body = servers.bob.request("DELETE", f"layenv/environments/{env_id}")
    assert code == 204, (code, body)
    assert not path.exists()
    assert "shared1" not in envs_in(listing(servers.alice), group_root)
    assert f"{env_id}-py" not in kernel_names(servers.alice)
    assert servers.alice.request("DELETE", f"layenv/environments/{own['environment']['id']}")[0] == 204


def test_each_server_sees_the_others_new_and_deleted_envs_on_its_next_listing(
    servers: Servers, group_root: Path, index: GatedIndex
):
    alice, bob = servers.alice, servers.bob
    # both caches warm, then alice creates: bob's very next listing (and kernel list) has it
    assert "seen1" not in envs_in(listing(bob), group_root)
    bob_kernels = kernel_names(bob)
    job = create_in_group(alice, "seen1", servers.base_id)
    kernel = job["environment"]["kernels"][0]["name"]
    assert kernel not in bob_kernels
    assert envs_in(listing(bob), group_root)["seen1"]["id"] == job["environment"]["id"]
    assert kernel in kernel_names(bob)

    # bob lists while alice's build is half-made (held at the index): not listed; once it is done, it is
    with index.closed():
        code, held = create(alice, "seen2", servers.base_id, root=GROUP_ROOT, packages=["iniconfig"])
        assert code == 202, held
        assert alice.wait_for_step(held["id"], "resolve")["state"] == "running"
        index.wait_for_request()
        for server in (bob, alice):
            listed = listing(server)
            assert "seen2" not in envs_in(listed, group_root)
            reasons = [s["reason"] for s in listed["skipped"] if s["path"] == str(group_root / "seen2")]
            assert all(reason.startswith("being created") for reason in reasons), reasons
        assert (group_root / "seen2" / BUILDING_MARKER).exists()
    held = alice.follow(held["id"])
    assert held["state"] == "succeeded", job_log(alice, held["id"])
    seen2 = envs_in(listing(bob), group_root)["seen2"]
    assert seen2["kernels"] and seen2["id"] == held["environment"]["id"]
    code, detail = bob.request("GET", f"layenv/environments/{seen2['id']}")
    assert code == 200 and {"name": "iniconfig", "version": "2.0.0"} in detail["packages"]["layer"], detail

    # bob deletes them: alice's very next listing and kernel list no longer have them
    for name in ("seen1", "seen2"):
        env_id = envs_in(listing(alice), group_root)[name]["id"]
        code, body = bob.request("DELETE", f"layenv/environments/{env_id}")
        assert code == 204, (code, body)
        assert name not in envs_in(listing(alice), group_root)
    assert kernel not in kernel_names(alice)


def test_concurrent_creates_and_deletes_from_two_servers_leave_one_consistent_env_per_name(
    servers: Servers, unix_users: Users, group_root: Path
):
    """20 creates of 5 names and 8 deletes, randomly spread over alice's and bob's servers, fired in bursts.

    Every create is refused (409) or builds completely; a delete (204) removes a complete env. Per name, the
    successful creates and deletes alternate, so the env exists at the end exactly when there is one more.
    """
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    names = [f"race{i}" for i in range(5)]
    by_user = {"alice": servers.alice, "bob": servers.bob}
    ops = [("create", name) for name in names * 4] + [("delete", rng.choice(names)) for _ in range(8)]
    rng.shuffle(ops)
    bursts = {"create": (0.0, 2.5, 5.0), "delete": (1.5, 4.0, 6.5)}  # creates and deletes of one name collide
    plan = [(kind, name, rng.choice(sorted(by_user)), rng.choice(bursts[kind]) + rng.uniform(0, 0.5))
            for kind, name in ops]  # fmt: skip
    context = f"seed {seed}, plan {plan}"
    stop = threading.Event()
    bad_listings: list[str] = []

    def run(kind: str, name: str, who: str, delay: float) -> dict[str, Any]:
        server = by_user[who]
        time.sleep(delay)
        if kind == "create":
            code, body = create(server, name, servers.base_id, root=GROUP_ROOT)
            outcome: dict[str, Any] = {"kind": kind, "name": name, "who": who, "code": code, "body": body}
            if code == 202:
                outcome["job"] = server.follow(body["id"])
            return outcome
        deadline = time.monotonic() + 2  # a delete waits a little for its env to be listed
        while (env := envs_in(listing(server), group_root).get(name)) is None:
            if time.monotonic() > deadline:
                return {"kind": kind, "name": name, "who": who, "code": None}
            time.sleep(0.1)
        code, body = server.request("DELETE", f"layenv/environments/{env['id']}")
        return {"kind": kind, "name": name, "who": who, "code": code, "body": body}

    def watch(who: str) -> None:
        while not stop.is_set():
            listed = listing(by_user[who])
            for name, env in envs_in(listed, group_root).items():
                if name not in names or not env["kernels"] or env["scope"] != "group":
                    bad_listings.append(f"{who} listed {env}")
            for skipped in listed["skipped"]:  # only builds under way may show up there
                if os.path.dirname(skipped["path"]) == str(group_root) and not skipped["reason"].startswith(
                    "being created"
                ):
                    bad_listings.append(f"{who} skipped {skipped}")
            time.sleep(0.05)

    with ThreadPoolExecutor(len(plan) + 2) as pool:
        watchers = [pool.submit(watch, who) for who in by_user]
        outcomes = [f.result() for f in [pool.submit(run, *step) for step in plan]]
        stop.set()
        for watcher in watchers:
            watcher.result()
    assert bad_listings == [], context

    for outcome in outcomes:
        if outcome["kind"] == "create":
            assert outcome["code"] in (202, 409), (outcome, context)
            if outcome["code"] == 409:
                assert outcome["body"]["message"], outcome
        else:
            assert outcome["code"] in (None, 204, 404, 409), (outcome, context)

    # every job: succeeded, its log complete and retrievable from the server that ran it, in that server's jobs
    for outcome in [o for o in outcomes if o["kind"] == "create" and o["code"] == 202]:
        server, job = by_user[outcome["who"]], outcome["job"]
        log = job_log(server, job["id"])
        assert job["state"] == "succeeded", f"{job}\n{log}\n{context}"
        assert log.startswith("== create\n$ ") and log.endswith("\n== succeeded\n"), log
        assert job["id"] in {j["id"] for j in server.get("layenv/jobs")["jobs"]}
        assert job["environment"]["path"] == str(group_root / outcome["name"]), job
        assert job["environment"]["scope"] == "group", job
        owner = unix_users.alice if outcome["who"] == "alice" else unix_users.bob
        assert job["environment"]["owner"] == owner.name, job

    # per name: creates and deletes alternated; nothing half-made or stray is left
    on_disk = {p.name for p in group_root.iterdir()} - {LOCKS}
    assert on_disk <= set(names), f"stray entries {on_disk - set(names)}; {context}"
    assert half_made(group_root) == [], context
    for name in names:
        created = sum(1 for o in outcomes if o["kind"] == "create" and o["code"] == 202 and o["name"] == name)
        deleted = sum(1 for o in outcomes if o["kind"] == "delete" and o["code"] == 204 and o["name"] == name)
        assert created >= 1, f"{name}: no create succeeded; {context}"
        assert created - deleted in (0, 1), f"{name}: {created} created, {deleted} deleted; {context}"
        assert (name in on_disk) == (created - deleted == 1), f"{name}: {created}/{deleted}, on disk: {on_disk}"
    for name in on_disk:
        assert (group_root / name / PROVENANCE).is_file()
        assert group_sharing_problems(group_root / name, unix_users.gid) == []

    # once settled, both servers list exactly what is on disk, with the same ids
    seen = {
        who: {n: e["id"] for n, e in envs_in(listing(server), group_root).items()} for who, server in by_user.items()
    }
    assert seen["alice"] == seen["bob"], context
    assert set(seen["alice"]) == on_disk, context


def test_a_crashed_servers_half_made_env_is_cleaned_by_the_other_but_never_while_its_build_lives(
    shared_area: SharedArea, unix_users: Users, servers: Servers, group_root: Path, index: GatedIndex
):
    bob = servers.bob
    path = group_root / "orphan"
    crashing = start_server(shared_area, unix_users.alice, "crashing", **server_settings(index))
    try:
        with index.closed():
            code, job = create(crashing, "orphan", servers.base_id, root=GROUP_ROOT, packages=["iniconfig"])
            assert code == 202, job
            assert crashing.wait_for_step(job["id"], "resolve")["state"] == "running"
            index.wait_for_request()
            installers = processes_mentioning(str(path))
            assert installers, "the installer of the held build is not running"

            # alive (its lock held): bob's listings never remove it, and bob cannot create or delete it
            for _ in range(10):
                listed = listing(bob)
                assert "orphan" not in envs_in(listed, group_root)
                assert (path / BUILDING_MARKER).exists(), "a live build's env was removed"
                time.sleep(0.1)
            code, body = create(bob, "orphan", servers.base_id, root=GROUP_ROOT)
            assert code == 409, (code, body)
            assert (path / BUILDING_MARKER).exists()

            # the server dies with SIGKILL, and so does its installer: nobody holds the lock any more
            crashing.proc.kill()
            crashing.proc.wait()
            for pid in installers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while processes_mentioning(str(path)):
                assert time.monotonic() < deadline, f"the installer survived: {processes_mentioning(str(path))}"
                time.sleep(0.05)
            assert (path / BUILDING_MARKER).exists()

        # bob's next listing finds it abandoned and removes it; the name is free again
        listed = listing(bob)
        assert "orphan" not in envs_in(listed, group_root)
        assert not path.exists(), f"the crashed build's env is still there: {sorted(os.listdir(path))}"
        assert str(path) not in {s["path"] for s in listed["skipped"]}
        assert half_made(group_root) == []
        again = create_in_group(bob, "orphan", servers.base_id)
        assert again["environment"]["owner"] == unix_users.bob.name

        # the crashed server, restarted, tells what happened to its job; its log is complete
        crashing.stop()
        restarted = start_server(shared_area, unix_users.alice, "crashing", **server_settings(index))
        try:
            final = restarted.get(f"layenv/jobs/{job['id']}")
            assert final["state"] == "failed" and "interrupted" in final["error"], final
            log = job_log(restarted, job["id"])
            assert "== resolve\n" in log and log.rstrip("\n").rsplit("\n", 1)[-1].startswith("== failed"), log
            assert path.is_dir() and not (path / BUILDING_MARKER).exists(), "bob's new env must survive"
        finally:
            restarted.stop()
    finally:
        crashing.stop()


def test_simultaneous_deletes_of_one_env_from_both_servers_delete_it_once(servers: Servers, group_root: Path):
    """Both members press delete at once, several times: one 204, the others 404 (gone) or 409 (busy)."""

    def delete(server: JupyterProcess, env_id: str, barrier: threading.Barrier) -> tuple[int, Any]:
        barrier.wait()
        return server.request("DELETE", f"layenv/environments/{env_id}")

    for attempt in range(3):
        job = create_in_group(servers.alice, "twice", servers.base_id)
        env_id = job["environment"]["id"]
        for server in (servers.alice, servers.bob):  # both caches know it
            assert "twice" in envs_in(listing(server), group_root)
        barrier = threading.Barrier(8)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(delete, [servers.alice, servers.bob] * 4, [env_id] * 8, [barrier] * 8))
        codes = sorted(code for code, _ in answers)
        unexpected = [answer for answer in answers if answer[0] not in (204, 404, 409)]
        assert unexpected == [] and codes.count(204) == 1, f"attempt {attempt}: {codes}, {unexpected}"
        assert not (group_root / "twice").exists()


@dataclass
class HeldServer:
    """bob's server with tests/rmtree_hook on its PYTHONPATH: it records, then holds while ``hold`` exists, each
    ``event`` (``shutil.rmtree`` or ``open``) on a path at or under the one watched."""

    server: JupyterProcess
    record: Path
    hold: Path

    def reached(self, pending: Future, what: str) -> None:
        """Waits until the hook recorded a held call; ``pending`` (the request that should get there) still runs."""
        deadline = time.monotonic() + 30
        while not self.record.exists():
            assert not pending.done(), f"{what} never happened: {pending.result()}"
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.05)


@contextlib.contextmanager
def held_server(
    shared_area: SharedArea, unix_users: Users, index: GatedIndex, name: str, under: Path, event: str
) -> Iterator[HeldServer]:
    watch = shared_area.root / f"{name}-watch-{os.getpid()}"  # the hook and its files, where bob can reach them
    shutil.copytree(Path(__file__).parent / "rmtree_hook", watch / "hook")
    unix_users.bob.chown(watch)
    record, hold = watch / "record.jsonl", watch / "hold"
    hook = {"PYTHONPATH": str(watch / "hook"), "LAYENV_TEST_RMTREE_RECORD": str(record),
            "LAYENV_TEST_RMTREE_UNDER": str(under), "LAYENV_TEST_RMTREE_HOLD": str(hold),
            "LAYENV_TEST_RMTREE_EVENT": event}  # fmt: skip
    server = start_server(shared_area, unix_users.bob, name, extra_env=hook, **server_settings(index))
    try:
        yield HeldServer(server, record, hold)
    finally:
        hold.unlink(missing_ok=True)
        server.stop()
        shutil.rmtree(watch, ignore_errors=True)


def test_a_delete_whose_listing_read_the_env_as_another_server_deleted_it_answers_gone(
    shared_area: SharedArea, unix_users: Users, servers: Servers, group_root: Path, index: GatedIndex
):
    """bob's delete re-reads the env (it changed) and is held when it opens the env's provenance file, its last read
    before it asks whether the env is writable (tests/rmtree_hook, watching ``open``); alice's server deletes the env
    in that window. bob's listing then saw the env's files but asked access(2) of a path gone: its delete must
    answer 404 (gone), not 403 "read-only for this server's user". Found by CI: simultaneous deletes from both
    servers got that 403 once in 3 x 8 requests."""
    job = create_in_group(servers.alice, "raced", servers.base_id)
    path, env_id = group_root / "raced", job["environment"]["id"]
    assert "raced" in envs_in(listing(servers.alice), group_root)
    with held_server(shared_area, unix_users, index, "held", path / PROVENANCE, "open") as held:
        assert "raced" in envs_in(listing(held.server), group_root)
        held.hold.touch()
        held.record.unlink(missing_ok=True)
        (path / "notes.txt").write_text("a change: bob's next listing reads the env again\n")
        with ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(held.server.request, "DELETE", f"layenv/environments/{env_id}")
            held.reached(deleting, "bob's delete reading the env")
            code, body = servers.alice.request("DELETE", f"layenv/environments/{env_id}")
            assert code == 204, (code, body)
            assert not path.exists()
            held.hold.unlink()
            code, body = deleting.result(timeout=60)
        assert code == 404, (code, body)


def test_an_env_being_deleted_by_one_server_is_never_listed_half_deleted_by_the_other(
    shared_area: SharedArea, unix_users: Users, servers: Servers, group_root: Path, index: GatedIndex
):
    """bob's server deletes alice's group env and is held between its rename and its removal (tests/rmtree_hook,
    an audit hook on its PYTHONPATH): in that window the env's files are still on disk, under a hidden name, and
    alice's listings (fresh scans: the root changed) show neither the env nor its remainder, nor its kernel.
    A delete made in place, without the rename, fails here: the removal would start on the env's own name."""
    job = create_in_group(servers.alice, "big", servers.base_id)
    path, env_id = group_root / "big", job["environment"]["id"]
    kernel = job["environment"]["kernels"][0]["name"]
    assert envs_in(listing(servers.alice), group_root)["big"]["kernels"]
    with held_server(shared_area, unix_users, index, "holding", group_root, "shutil.rmtree") as held:
        held.hold.touch()
        with ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(held.server.request, "DELETE", f"layenv/environments/{env_id}")
            held.reached(deleting, "the delete's removal")
            removal = json.loads(held.record.read_text().splitlines()[0])
            doomed = Path(removal["path"])
            assert doomed.parent == group_root and doomed.name.startswith(".layenv-deleting-big-"), removal
            assert doomed.is_dir() and not path.exists() and "big" not in removal["siblings"], removal
            for _ in range(3):
                listed = listing(servers.alice)
                assert "big" not in envs_in(listed, group_root)
                assert [s for s in listed["skipped"] if os.path.dirname(s["path"]) == str(group_root)] == []
                assert [e for e in listed["environments"] if ".layenv-deleting" in e["path"]] == []
            assert kernel not in kernel_names(servers.alice)
            assert not deleting.done(), "the listings above must run while the delete is held"
            held.hold.unlink()
            code, body = deleting.result(timeout=60)
        assert code == 204, (code, body)
        assert not path.exists() and not doomed.exists()
        assert "big" not in envs_in(listing(servers.alice), group_root)


def test_the_creator_group_members_see_is_the_user_who_created_it(
    servers: Servers, unix_users: Users, group_root: Path
):
    """On a server reached with its token (no login name: Jupyter gives each request an anonymous identity), the
    creator recorded and listed, and the policy's user, are the Unix user the server runs as, not a random id."""
    alice = unix_users.alice
    assert servers.alice.get("layenv/policy")["user"] == alice.name
    create_in_group(servers.alice, "whose", servers.base_id)
    provenance = json.loads((group_root / "whose" / PROVENANCE).read_text())
    assert (provenance["creator"], provenance["creator_uid"]) == (alice.name, alice.uid), provenance
    assert envs_in(listing(servers.bob), group_root)["whose"]["creator"] == alice.name


def test_a_members_change_keeps_the_layer_the_groups_even_when_its_server_is_killed_mid_change(
    shared_area: SharedArea, unix_users: Users, servers: Servers, group_root: Path, index: GatedIndex
):
    """bob changes alice's group layer; while the change is held (its snapshot taken), everything in the layer is the
    group's (the snapshot's directory and marker were bob's alone, 2755 and 0644); bob's server is then killed, and
    alice's change of the layer must go through, where it failed with "Permission denied: 'job.json'"."""
    job = create_in_group(servers.alice, "snap", servers.base_id)
    path, env_id = group_root / "snap", job["environment"]["id"]
    crashing = start_server(shared_area, unix_users.bob, "crashing-change", **server_settings(index))
    try:
        with index.closed():
            code, held = crashing.request("POST", f"layenv/environments/{env_id}/packages", {"add": ["iniconfig"]})
            assert code == 202, held
            crashing.wait_for_step(held["id"], "resolve")
            index.wait_for_request()
            assert (path / ".layenv-snapshot").is_dir()
            assert group_sharing_problems(path, unix_users.gid) == []
            installers = processes_mentioning(str(path))
            crashing.proc.kill()
            crashing.proc.wait()
            for pid in installers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        code, change = servers.alice.request("POST", f"layenv/environments/{env_id}/packages", {"add": ["iniconfig"]})
        assert code == 202, change
        change = servers.alice.follow(change["id"])
        assert change["state"] == "succeeded", f"{change}\n{job_log(servers.alice, change['id'])}"
        assert not (path / ".layenv-snapshot").exists()
    finally:
        crashing.stop()


def test_a_group_root_made_read_only_mid_create_is_said_so_and_its_leftover_goes_once_writable(
    servers: Servers, group_root: Path, index: GatedIndex
):
    """The administrator remounts the group root read-only while alice's create is held at its resolve: the install
    then fails. Her job said only uv's "Read-only file system (os error 30)", nothing of the half-made env it could
    not remove, and bob's listing called that env "being created: a jupyter_layenv job is building it" for as long
    as the root stayed read-only. Once writable again, the next listing removes it and the name is free."""
    alice, bob = servers.alice, servers.bob
    path = group_root / "frozen"
    with index.closed():
        code, job = create(alice, "frozen", servers.base_id, root=GROUP_ROOT, packages=["iniconfig"])
        assert code == 202, job
        alice.wait_for_step(job["id"], "resolve")
        index.wait_for_request()
        with read_only(group_root):
            index.gate.set()
            job = alice.follow(job["id"])
            assert job["state"] == "failed", job
            first_line = job["error"].splitlines()[0]
            assert f"the file system mounted at {group_root} became read-only while the job ran" in first_line, job
            assert f"the half-made {path} could not be removed" in job["error"], job
            assert (path / BUILDING_MARKER).exists()
            reasons = {s["path"]: s["reason"] for s in listing(bob)["skipped"]}
            assert reasons[str(path)].startswith("left half-made by a build that ended"), reasons
            assert "read-only" in reasons[str(path)], reasons
    assert "frozen" not in envs_in(listing(bob), group_root)
    assert not path.exists()
    create_in_group(bob, "frozen", servers.base_id)


def test_doctor_names_the_group_envs_an_outsider_still_owns(
    servers: Servers, unix_users: Users, shared_area: SharedArea, group_root: Path
):
    """A member who leaves the group keeps owning the envs they made in its root, and with it the right to change
    their files while the others' kernels run them; so does whoever is given a deleted account's uid. The
    administrator's (or a member's) ``jupyter layenv doctor`` names each such env with what to do."""
    create_in_group(servers.bob, "left", servers.base_id)
    shutil.copytree(group_root / "left", group_root / "gone", symlinks=True)
    unused_uid = next(uid for uid in range(59999, 50000, -1) if uid not in {p.pw_uid for p in pwd.getpwall()})
    for owner, name in ((unix_users.carol.uid, "left"), (unused_uid, "gone")):  # bob left; an account deleted
        for item, _ in tree_modes(group_root / name):
            os.lchown(item, owner, -1)
    doctor = [str(shared_area.jupyter), "layenv", "doctor"]
    proc = unix_users.alice.run([*doctor, "--json"], env=servers.alice.env)
    assert proc.returncode == 0, proc.stderr
    (root,) = [root for root in json.loads(proc.stdout)["shared_roots"] if root["id"] == GROUP_ROOT]
    owned = {item["env"]: item for item in root["foreign_owners"]}
    assert set(owned) == {"left", "gone"}, owned
    assert owned["left"]["owner"] == unix_users.carol.name
    assert f"chown -R MEMBER {group_root / 'left'}" in owned["left"]["message"]
    assert owned["gone"]["owner"].startswith(f"uid {unused_uid}, an account that no longer exists")
    text = unix_users.alice.run(doctor, env=servers.alice.env).stdout
    assert f"! left is owned by {unix_users.carol.name}, who is not a member of {unix_users.group}" in text, text
