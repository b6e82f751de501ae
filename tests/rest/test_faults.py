"""The fault and bad-input campaign (issue 10): full disks, crashed neighbours, hostile shared roots, odd input.

Each test reproduces one defect against a real server: the in-process one of pytest-jupyter, or a real
``jupyter server`` process where a kill is involved. Mounts (a small tmpfs for a full disk, a read-only bind
mount) need root; their tests skip without it, and every mount is undone by its fixture. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from envtree import make_layered_env
from layenv_api import BASE_ID, create, fetch_json, follow
from mounts import read_only, tmpfs
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from jupyter_layenv.service import account_name

BASE = "miniconda3/envs/py311_ai"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")


def root_entries(home: Path) -> list[str]:
    return sorted(os.listdir(home / ".virtualenvs"))


# ------------------------------------------------------------------------------------------ (a) 400s from input


@pytest.mark.parametrize("offset", ["²", "٣", str(2**63), str(2**64), "9" * 40])
async def test_log_offset_that_is_not_a_plain_byte_count(jp_fetch, offset: str):
    code, body = await fetch_json(jp_fetch, "jobs", "0" * 32, "log", params={"offset": offset})
    assert code == 400, body
    assert "offset must be a byte count" in body["message"]


async def test_deeply_nested_json_is_a_400(jp_fetch, clean_create_home: Path, audit):
    body = "[" * 1000 + "]" * 1000
    code, reply = await fetch_json(jp_fetch, "environments", method="POST", body=body)
    assert code == 400, reply
    assert "nested" in reply["message"]
    assert root_entries(clean_create_home) == []
    assert [(e["action"], e["outcome"]) for e in audit] == [("create", "refused")]


@pytest.mark.parametrize("base", [f"{BASE_ID}\n", f"{BASE_ID} ", f" {BASE_ID}", f"{BASE_ID}\t"])
async def test_base_with_surrounding_whitespace_is_refused(jp_fetch, clean_create_home: Path, base: str):
    code, body = await create(jp_fetch, {"name": "spaced", "base": base})
    assert code == 400, body
    assert "whitespace" in body["message"]
    assert root_entries(clean_create_home) == []


@pytest.mark.parametrize("where", ["packages", "requirements"])
async def test_a_comment_inside_a_marker_is_refused_before_the_installer_reads_it(
    jp_fetch, clean_create_home: Path, where: str
):
    spec = 'iniconfig; platform_machine != " #x"'
    body = {"packages": [spec]} if where == "packages" else {"requirements": spec + "\n"}
    code, reply = await create(jp_fetch, {"name": "marker", "base": BASE_ID, **body})
    assert code == 400, reply  # a requirements text is read as pip reads it: the comment cuts the marker
    assert "comment" in reply["message"] if where == "packages" else "not a PEP 508" in reply["message"]
    assert root_entries(clean_create_home) == []


# ------------------------------------------------------------------------------------------------ (a) XSRF


async def test_a_browser_request_without_its_xsrf_token_says_so(jp_fetch, jp_base_url, jp_http_port, clean_create_home):
    """A cookie-authenticated POST (the panel's) without ``_xsrf``: not "ask your administrator"."""
    response = await jp_fetch("layenv", "environments")  # token: the server sets its login cookie
    cookies = "; ".join(c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie"))
    assert cookies
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}layenv/environments"
    body = json.dumps({"name": "xsrf", "base": BASE_ID})
    with pytest.raises(HTTPClientError) as err:
        await AsyncHTTPClient().fetch(url, method="POST", body=body, headers={"Cookie": cookies})
    reply = json.loads(err.value.response.body)
    assert err.value.code == 403, reply
    assert "XSRF" in reply["message"] and "reload" in reply["message"], reply
    assert "administrator" not in reply["message"]
    assert root_entries(clean_create_home) == []


# ----------------------------------------------------------------------------------------------- (a) export names


ODD_NAMES = ["实验", "env-\N{SNAKE}", 'quo"te', "semi;colon", "new\nline"]


@pytest.fixture(scope="module")
def odd_envs(create_home: Path) -> dict[str, Path]:
    """Layers whose folder names are not plain ASCII, outside the create root (made by hand, as users do)."""
    where = create_home / "hand-made"
    where.mkdir(exist_ok=True)
    return {name: make_layered_env(create_home / BASE, where / name) for name in ODD_NAMES}


@pytest.fixture
def jp_server_config(wheelhouse: Path, create_home: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"find_links": [str(wheelhouse)], "offline": True},
        "LayenvKernelSpecManager": {"env_paths": [str(create_home / "hand-made" / n) for n in ODD_NAMES]},
    }


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_export_of_a_name_that_is_not_plain_ascii(jp_fetch, odd_envs, audit, name: str):
    _, listing = await fetch_json(jp_fetch, "environments")
    env = next(e for e in listing["environments"] if e["path"] == str(odd_envs[name]))
    response = await jp_fetch("layenv", "environments", env["id"], "export", params={"format": "requirements.txt"})
    disposition = response.headers["Content-Disposition"]
    assert disposition.isascii() and "\n" not in disposition
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.endswith("-requirements.txt") and '"' not in fallback and "\\" not in fallback
    assert f"filename*=UTF-8''{quote(f'{name}-requirements.txt', safe='')}" in disposition
    assert [(e["action"], e["outcome"]) for e in audit] == [("export", "succeeded")]


# --------------------------------------------------------------------------------------------- (a) audit trail


async def test_every_refusal_is_audited_under_one_identity(jp_fetch, clean_create_home: Path, audit):
    me = account_name()
    refused = [
        (("environments", "nope", "export"), {"params": {"format": "requirements.txt"}}),
        (("environments", "conda-py311_ai", "export"), {"params": {"format": "setup.py"}}),
        (("jobs", "0" * 32), {"method": "DELETE"}),
        (("jobs", "not-a-job"), {"method": "DELETE"}),
        (("environments", "nope"), {"method": "DELETE"}),
        (("environments",), {"method": "POST", "body": "{not json"}),
    ]
    for parts, kwargs in refused:
        code, _ = await fetch_json(jp_fetch, *parts, **kwargs)
        assert 400 <= code < 500
    assert [(e["action"], e["outcome"]) for e in audit] == [
        ("export", "refused"),
        ("export", "refused"),
        ("cancel", "refused"),
        ("cancel", "refused"),
        ("delete", "refused"),
        ("create", "refused"),
    ]
    code, job = await create(jp_fetch, {"name": "who", "base": BASE_ID})
    assert code == 202, job
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    code, _ = await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    assert code == 409  # finished: nothing to cancel, and recorded
    code, listing = await fetch_json(jp_fetch, "environments")
    env = next(e for e in listing["environments"] if e["name"] == "who")
    code, _ = await fetch_json(jp_fetch, "environments", env["id"], method="DELETE")
    assert code == 204
    assert [(e["action"], e["outcome"]) for e in audit[-3:]] == [
        ("create", "succeeded"),
        ("cancel", "refused"),
        ("delete", "succeeded"),
    ]
    assert {e["user"] for e in audit} == {me}, audit


# ------------------------------------------------------------------------------- (b) hostile shared roots


async def listed(jp_fetch, name: str) -> dict:
    _, listing = await fetch_json(jp_fetch, "environments")
    return next(e for e in listing["environments"] if e["name"] == name)


async def created(jp_fetch, name: str) -> dict:
    code, job = await create(jp_fetch, {"name": name, "base": BASE_ID})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "succeeded", job
    return job["environment"]


async def test_a_planted_lock_dir_link_is_never_followed(jp_fetch, clean_create_home: Path, tmp_path: Path, audit):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = clean_create_home / ".virtualenvs" / ".layenv-locks"
    link.symlink_to(elsewhere)
    code, body = await create(jp_fetch, {"name": "planted", "base": BASE_ID})
    assert code == 409, body
    assert str(link) in body["message"] and "symbolic link" in body["message"]
    assert list(elsewhere.iterdir()) == []
    assert root_entries(clean_create_home) == [".layenv-locks"]
    assert [(e["action"], e["outcome"]) for e in audit] == [("create", "refused")]
    link.unlink()  # the name is free once the link is gone
    assert (await created(jp_fetch, "planted"))["name"] == "planted"


async def test_deleting_a_symlinked_env_is_refused_and_hides_nothing(jp_fetch, clean_create_home: Path, tmp_path):
    target = make_layered_env(clean_create_home / BASE, tmp_path / "target")
    link = clean_create_home / ".virtualenvs" / "linked"
    link.symlink_to(target)
    env = await listed(jp_fetch, "linked")
    assert "symbolic link" in env["delete_blocked_reason"]
    code, body = await fetch_json(jp_fetch, "environments", env["id"], method="DELETE")
    assert code == 403, body
    assert "symbolic link" in body["message"] and str(target) in body["message"]
    assert root_entries(clean_create_home) == ["linked"] and link.is_symlink() and target.is_dir()


@needs_root
async def test_delete_in_a_read_only_root_names_the_root(jp_fetch, clean_create_home: Path, audit):
    env = await created(jp_fetch, "frozen")
    root = clean_create_home / ".virtualenvs"
    with read_only(root):
        assert "read-only" in (await listed(jp_fetch, "frozen"))["delete_blocked_reason"]
        code, body = await fetch_json(jp_fetch, "environments", env["id"], method="DELETE")
        assert code == 403, body
        assert str(root) in body["message"] and "read-only" in body["message"], body
        assert "frozen" in root_entries(clean_create_home)
    assert audit[-1]["outcome"] == "refused"


@needs_root
async def test_a_read_only_mount_is_named_as_one_for_creates_and_changes(jp_fetch, clean_create_home: Path, audit):
    """A root mounted read-only refused a create with "not writable for this server's user; ask its owner for
    write access (… chmod 2775 …)" (no chmod helps a read-only mount) and a change with "read-only for this server's
    user": both now say the file system is read-only and whom to ask, as a delete there does."""
    env = await created(jp_fetch, "frozen2")
    root = clean_create_home / ".virtualenvs"
    with read_only(root):
        code, body = await create(jp_fetch, {"name": "thawed", "base": BASE_ID})
        _, policy = await fetch_json(jp_fetch, "policy")
        changed, change = await fetch_json(
            jp_fetch, "environments", env["id"], "packages", method="POST", body=json.dumps({"add": ["iniconfig"]})
        )
    assert code == 403, body
    refused = next(r for r in policy["roots"] if r["id"] == "user")["refused"]
    for message in (body["message"], refused):
        assert f"{root} is on a read-only file system" in message and "chmod" not in message, message
        assert "administrator" in message, message
    assert changed == 403, change
    assert "read-only file system" in change["message"] and "administrator" in change["message"], change
    assert root_entries(clean_create_home) in (["frozen2"], [".layenv-locks", "frozen2"])
    assert [e["outcome"] for e in audit[-2:]] == ["refused", "refused"]


@pytest.fixture
def orphaned_layers(clean_create_home: Path) -> list[Path]:
    """Two layers in the user root whose Conda base was deleted after they were made."""
    from envtree import make_conda_prefix

    base = make_conda_prefix(clean_create_home / "miniconda3" / "envs" / "doomed")
    layers = [make_layered_env(base, clean_create_home / ".virtualenvs" / n) for n in ("orphan", "orphan-cli")]
    shutil.rmtree(base)
    return layers


async def test_a_layer_whose_base_was_deleted_can_be_deleted(jp_fetch, orphaned_layers: list[Path], audit):
    rest, cli = orphaned_layers
    _, listing = await fetch_json(jp_fetch, "environments")
    skipped = {s["path"]: s for s in listing["skipped"]}
    assert "base deleted" in skipped[str(rest)]["reason"]
    assert skipped[str(rest)]["delete_blocked_reason"] is None
    code, body = await fetch_json(jp_fetch, "environments", skipped[str(rest)]["id"], method="DELETE")
    assert code == 204, body
    assert not rest.exists()
    assert (audit[-1]["action"], audit[-1]["outcome"], audit[-1]["path"]) == ("delete", "succeeded", str(rest))
    env = {**os.environ, "HOME": str(cli.parent.parent)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter")), "layenv", "delete", "orphan-cli"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not cli.exists()
    assert sorted(os.listdir(cli.parent)) in ([], [".layenv-locks"])


async def test_a_layer_whose_base_was_deleted_exports_its_own_packages(jp_fetch, clean_create_home: Path):
    """To recreate a layer on another base (what its skip reason says to do), its owner needs its packages: the
    export answered "environment 'orphan.…' not found: see GET environments", the id the listing had just given."""
    from envtree import add_pure_python_package, make_conda_prefix, site_packages

    base = make_conda_prefix(clean_create_home / "miniconda3" / "envs" / "doomed3")
    layer = make_layered_env(base, clean_create_home / ".virtualenvs" / "stranded3")
    add_pure_python_package(site_packages(layer), "rescued", "1.2", "")
    shutil.rmtree(base)
    _, listing = await fetch_json(jp_fetch, "environments")
    orphan = next(s for s in listing["skipped"] if s["path"] == str(layer))
    response = await jp_fetch("layenv", "environments", orphan["id"], "export", params={"format": "requirements.txt"})
    assert "rescued==1.2" in response.body.decode().splitlines()
    yml = {"format": "environment.yml"}
    code, body = await fetch_json(jp_fetch, "environments", orphan["id"], "export", params=yml)
    assert code == 400, body
    assert "base deleted" in body["message"] and "requirements.txt" in body["message"], body
    code, body = await fetch_json(jp_fetch, "environments", orphan["id"], "packages", method="POST",
                                  body=json.dumps({"add": ["iniconfig"]}))  # fmt: skip
    assert code == 409, body  # was a 404 naming the id the listing gave: "environment 'orphan.…' not found"
    assert "base deleted" in body["message"] and "cannot be changed" in body["message"], body
    shutil.rmtree(layer)


async def test_a_layer_with_a_dangling_interpreter_can_be_deleted(jp_fetch, clean_create_home: Path, audit):
    """Its skip reason says "recreate the environment or delete it", but `jupyter layenv delete NAME` answered "not
    found" and the panel had no Delete for it: it had to be removed by hand. It gets an id and a delete, like a layer
    whose base was deleted."""
    broken = []
    for name in ("dangling", "dangling-cli"):
        env = await created(jp_fetch, name)
        python = Path(env["path"]) / "bin" / "python"
        python.unlink()
        python.symlink_to("/nonexistent/python3")
        broken.append(Path(env["path"]))
    rest, cli = broken
    _, listing = await fetch_json(jp_fetch, "environments")
    skipped = {s["path"]: s for s in listing["skipped"]}
    assert "broken interpreter" in skipped[str(rest)]["reason"] and "delete it" in skipped[str(rest)]["reason"]
    assert skipped[str(rest)]["delete_blocked_reason"] is None, skipped[str(rest)]
    code, body = await fetch_json(jp_fetch, "environments", skipped[str(rest)]["id"], method="DELETE")
    assert code == 204, body
    assert not rest.exists()
    assert (audit[-1]["action"], audit[-1]["outcome"], audit[-1]["path"]) == ("delete", "succeeded", str(rest))
    env = {**os.environ, "HOME": str(clean_create_home)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter")), "layenv", "delete", "dangling-cli"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not cli.exists()


# ------------------------------------------------------------------------------------------- (c) full disks


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory`` to the last byte."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@needs_root
@pytest.mark.parametrize("options", ["size=64k", "nr_inodes=4"])  # full while building; full at once
async def test_a_full_user_root_fails_cleanly_and_leaves_the_name_free(
    jp_fetch, clean_create_home: Path, audit, options: str
):
    root = clean_create_home / ".virtualenvs"
    with tmpfs(root, options):
        for _attempt in range(2):  # the second time too: nothing stuck, no "exists already"
            code, body = await create(jp_fetch, {"name": "full", "base": BASE_ID})
            if code == 202:
                body = await follow(jp_fetch, body["id"])
                assert body["state"] == "failed", body
                message = body["error"]
            else:
                assert code == 507, body
                message = body["message"]
            assert "no space left" in message and str(root) in message, message
            assert [n for n in root_entries(clean_create_home) if n != ".layenv-locks"] == []
        assert [(e["action"], e["outcome"]) for e in audit] in (
            [("create", "failed")] * 2,
            [("create", "refused")] * 2,
        )
    assert (await created(jp_fetch, "full"))["name"] == "full"


@needs_root
async def test_a_full_disk_says_how_much_the_packages_needed(
    jp_fetch, clean_create_home: Path, wheelhouse: Path, audit
):
    """The env fits, its package does not: the error says what the install needed, next to what is free."""
    from wheelhouse import write_wheel

    bulk = "x" * (1024 * 1024)  # compresses to nothing in the wheel, 1 MiB on disk
    write_wheel(wheelhouse, "bulky", "1.0", {f"bulky/part{i}.txt": bulk for i in range(3)} | {"bulky/__init__.py": ""})
    root = clean_create_home / ".virtualenvs"
    with tmpfs(root, "size=2m"):
        code, job = await create(jp_fetch, {"name": "bulky", "base": BASE_ID, "packages": ["bulky"]})
        assert code == 202, job
        job = await follow(jp_fetch, job["id"])
        assert job["state"] == "failed", job
        message = job["error"]
        assert "no space left" in message and str(root) in message, message
        assert "the 1 package to install (bulky 1.0) needed about 3.0 MiB" in message, message
        assert [n for n in root_entries(clean_create_home) if n != ".layenv-locks"] == []
    assert (audit[-1]["action"], audit[-1]["outcome"]) == ("create", "failed")


@needs_root
async def test_a_full_jobs_store_never_leaves_a_job_stuck(jp_fetch, clean_create_home: Path, jp_data_dir: Path, audit):
    jobs = jp_data_dir / "layenv" / "jobs"
    with tmpfs(jobs, "size=256k"):
        filler = await asyncio.to_thread(fill, jobs)
        # room for the job's record alone: the POST is taken, and the job's first write after it meets a full disk
        # (filling it while virtualenv runs instead raced with a job that can finish in a fraction of a second)
        os.truncate(filler, filler.stat().st_size - 4096)
        code, job = await create(jp_fetch, {"name": "store", "base": BASE_ID})
        assert code == 202, job
        job = await follow(jp_fetch, job["id"])
        assert job["state"] == "failed", job
        assert "no space left" in job["error"] and str(jobs) in job["error"], job["error"]
        assert root_entries(clean_create_home) in ([], [".layenv-locks"])
        assert (audit[-1]["action"], audit[-1]["outcome"]) == ("create", "failed")
        code, body = await create(jp_fetch, {"name": "store2", "base": BASE_ID})  # still full: refused at once
        assert code == 507, body
        assert "no space left" in body["message"] and str(jobs) in body["message"], body
        assert root_entries(clean_create_home) in ([], [".layenv-locks"])
        filler.unlink()
        _, listed_jobs = await fetch_json(jp_fetch, "jobs")  # the next read repairs the file on disk
        assert [j["state"] for j in listed_jobs["jobs"]] == ["failed"]
        on_disk = json.loads((jobs / f"{job['id']}.json").read_text())
        assert on_disk["state"] == "failed", on_disk
        assert (await created(jp_fetch, "store"))["name"] == "store"  # the name is free


# --------------------------------------------------------------------------------------- (d) crashed neighbour


def test_a_killed_servers_installer_dies_with_it_and_a_neighbour_cleans_up(
    clean_create_home: Path, tmp_path: Path, stalling_index
):
    """Server A is killed with kill -9 mid-install: its installer must not outlive it; server B, sharing the root,
    removes the half-made env once nothing of A's build is left; A, restarted, says what really happened."""
    from jupyter_process import JupyterProcess
    from layenv_api import processes_mentioning

    path = clean_create_home / ".virtualenvs" / "crashed"
    args = [f"--LayenvService.index_url={stalling_index.url}"]
    a = JupyterProcess(tmp_path / "a", clean_create_home, args=args)
    b = None
    try:
        a.wait_ready("layenv/jobs")
        code, job = a.request("POST", "layenv/environments", {"name": "crashed", "base": BASE_ID,
                                                              "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        deadline = time.monotonic() + 60
        while not processes_mentioning(str(path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_mentioning(str(path)), "the resolver or installer should be waiting on the index"
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while processes_mentioning(str(path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_mentioning(str(path)) == [], "the dead server's installer outlived it"

        b = JupyterProcess(tmp_path / "b", clean_create_home, args=args)  # its own job store, the same root
        b.wait_ready("layenv/jobs")
        listing = b.get("layenv/environments")
        assert not path.exists(), (listing["skipped"], sorted(os.listdir(path)))
        assert not any(s["path"] == str(path) for s in listing["skipped"])
        b.stop()

        a = JupyterProcess(tmp_path / "a", clean_create_home, args=args)
        a.wait_ready("layenv/jobs")
        after = a.get(f"layenv/jobs/{job['id']}")
        assert after["state"] == "failed"
        assert "already been removed" in after["error"] and "was removed" not in after["error"], after["error"]
    finally:
        a.stop()
        if b is not None:
            b.stop()
        for pid in processes_mentioning(str(path)):  # orphans of a failed run: never left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_what_a_build_left_in_a_root_is_listed_as_skipped(jp_fetch, clean_create_home: Path):
    """A directory in the user root that is no environment (an orphan's leftovers) blocks a name: say so."""
    leftover = clean_create_home / ".virtualenvs" / "leftover"
    (leftover / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    _, listing = await fetch_json(jp_fetch, "environments")
    skipped = {s["path"]: s["reason"] for s in listing["skipped"]}
    assert "not an environment" in skipped[str(leftover)] and "leftover" in skipped[str(leftover)]


@needs_root
async def test_a_change_with_a_full_jobs_store_is_refused_clearly(jp_fetch, clean_create_home: Path, jp_data_dir: Path):
    env = await created(jp_fetch, "changing")
    jobs = jp_data_dir / "layenv" / "jobs"
    with tmpfs(jobs, "size=64k"):
        filler = await asyncio.to_thread(fill, jobs)
        before = sorted(os.listdir(clean_create_home / ".virtualenvs" / "changing"))
        code, body = await fetch_json(
            jp_fetch, "environments", env["id"], "packages", method="POST", body=json.dumps({"add": ["iniconfig"]})
        )
        assert code == 507, body
        assert "no space left" in body["message"] and str(jobs) in body["message"], body
        assert sorted(os.listdir(clean_create_home / ".virtualenvs" / "changing")) == before
        filler.unlink()


async def test_a_build_that_fails_its_last_step_leaves_nothing_and_the_name_free(
    jp_fetch, clean_create_home: Path, wheelhouse: Path, audit
):
    """The last step, after the building marker is gone, checks that the new env is a kernel in the listing. A
    package that overwrites the env's pyvenv.cfg (a wheel's data file lands in the env's root) makes the env
    unlisted there: the job fails, and then no env may be left on disk, the name must be free, the audit says so.
    The error says why the env is not listed (discovery's reason for skipping it) and what to do, in REST words."""
    from wheelhouse import write_wheel

    write_wheel(wheelhouse, "cfgclobber", "1.0", {"cfgclobber-1.0.data/data/pyvenv.cfg": "clobbered = yes\n"})
    code, job = await create(jp_fetch, {"name": "clobbered", "base": BASE_ID, "packages": ["cfgclobber"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    assert job["state"] == "failed" and job["step"] == "register", job
    assert [n for n in root_entries(clean_create_home) if n != ".layenv-locks"] == []
    path = clean_create_home / ".virtualenvs" / "clobbered"
    assert job["error"].startswith(
        f"{path} was built but is not listed: discovery skips it (garbled pyvenv.cfg (no 'home = …' line) in {path}"
    ), job["error"]
    assert (
        "a package installed into it probably broke it: see the install step in the job's log "
        f"(GET jobs/{job['id']}/log), leave that package out; {path} was removed, create it again"
    ) in job["error"]
    assert "user_root" not in job["error"]
    assert job["error"].endswith(f"; {path} was removed, create it again")
    assert (audit[-1]["action"], audit[-1]["outcome"]) == ("create", "failed")
    assert audit[-1]["detail"] == job["error"]
    assert (await created(jp_fetch, "clobbered"))["name"] == "clobbered"  # the name is free: no "exists already"


async def test_a_job_killed_in_its_last_step_is_recovered_as_it_was(
    jp_fetch, clean_create_home: Path, jp_data_dir, audit
):
    """A server killed in a create's last step (the env complete, its marker gone, the check that it is a kernel not
    run) leaves a complete env and a job still "running". Whoever recovers the job keeps that env (other tools list
    it by now) and says so, in one audit event; it must not claim another server removed it."""
    code, job = await create(jp_fetch, {"name": "lastcheck", "base": BASE_ID})
    assert code == 202, job
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded"
    path = clean_create_home / ".virtualenvs" / "lastcheck"
    # what the killed server left: its job's record at the last step, the env's provenance naming that job
    jobs = jp_data_dir / "layenv" / "jobs"
    dead = uuid.uuid4().hex
    record = json.loads((jobs / f"{job['id']}.json").read_text(encoding="utf-8"))
    record.update(id=dead, state="running", step="register", finished=None, environment=None, pid=None)
    (jobs / f"{dead}.json").write_text(json.dumps(record), encoding="utf-8")
    provenance = json.loads((path / "layenv.json").read_text(encoding="utf-8"))
    (path / "layenv.json").write_text(json.dumps({**provenance, "job": dead}), encoding="utf-8")

    _, after = await fetch_json(jp_fetch, "jobs", dead)
    assert after["state"] == "failed", after
    assert "already been removed" not in after["error"], after["error"]
    assert f"{path} was built but not checked yet: it is kept" in after["error"], after["error"]
    assert (await listed(jp_fetch, "lastcheck"))["kernels"]
    await fetch_json(jp_fetch, "jobs")  # read again: recovered once, audited once
    assert [(e["action"], e["outcome"], e["detail"]) for e in audit if e["outcome"] == "failed"] == [
        ("create", "failed", after["error"])
    ], audit
