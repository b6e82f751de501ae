"""GET usage, `clean` and the size quota, on real layers: a kernel running from one, a job holding another, uv's
cache hard-linked into them; every removal audited and uv still installing from its pruned cache."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from envtree import make_conda_prefix, make_layered_env, make_venv, uv_install
from jupyter_process import JUPYTER
from layenv_api import fetch_json
from wheelhouse import write_wheel

from jupyter_layenv.identity import account_name
from jupyter_layenv.model import PROVENANCE
from jupyter_layenv.usage import sizing

LONG_AGO = time.time() - 100 * 86400
BIG = "x = 1\n" * 40_000


@pytest.fixture
def uv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """uv's cache, for the test's installs and the server's alike (both read UV_CACHE_DIR)."""
    cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    write_wheel(directory, "bigpkg", "1.0", {"bigpkg/__init__.py": BIG})
    write_wheel(directory, "onlyold", "1.0", {"onlyold/__init__.py": BIG})
    return directory


def layer(home: Path, name: str, wheels: Path, *packages: str, old: bool = True, ours: bool = True) -> Path:
    """A layer made with real virtualenv and uv; ``ours``: with the provenance (layenv.json, who made it) a create
    through jupyter_layenv leaves, without which clean never removes an env (another tool made it)."""
    env = make_layered_env(home / "miniconda3" / "envs" / "py311_ai", home / ".virtualenvs" / name, tool="uv")
    if packages:
        uv_install(env, wheels, *packages, hardlink=True)
    if ours:
        (env / PROVENANCE).write_text(json.dumps({"creator": account_name(), "installer": "uv"}))
    if old:  # made (and never used) 100 days ago
        for marker in ("pyvenv.cfg", PROVENANCE):
            if (env / marker).exists():
                os.utime(env / marker, (LONG_AGO, LONG_AGO))
    return env


def archives(cache: Path) -> dict[str, Path]:
    """uv's unpacked wheels, by the package they hold."""
    found = {}
    for archive in (cache / "archive-v0").iterdir():
        names = [p.name.split("-")[0] for p in archive.iterdir() if p.name.endswith(".dist-info")]
        found[names[0]] = archive
    return found


def hold_lock(env: Path) -> subprocess.Popen:
    """Another process's job on the env: it holds the env's lock, as a build or change in another server does."""
    code = (
        "import time; from jupyter_layenv.create.locks import EnvLock\n"
        f"lock = EnvLock.try_acquire({str(env)!r}); print(lock is not None, flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
    return proc


async def started_long_ago(data_dir: Path, env: Path) -> None:
    """A kernel running for 100 days: its start (recorded now) moved back to then."""
    record = data_dir / "layenv" / "last_used.json"
    for _ in range(300):
        uses = json.loads(record.read_text()) if record.exists() else {}
        if str(env) in uses:
            break
        await asyncio.sleep(0.1)
    uses[str(env)]["time"] = datetime.fromtimestamp(LONG_AGO, timezone.utc).isoformat(timespec="seconds")
    record.write_text(json.dumps(uses))


async def test_clean_removes_only_unused_envs_no_kernel_or_job_uses_and_prunes_uv_cache(
    jp_fetch, jp_serverapp, jp_data_dir, clean_create_home, uv_cache: Path, wheels: Path, audit: list[dict], tmp_path
):
    home = clean_create_home
    old = layer(home, "old", wheels, "bigpkg", "onlyold")
    running = layer(home, "running", wheels)
    locked = layer(home, "locked", wheels)
    recent = layer(home, "recent", wheels, "bigpkg", old=False)
    theirs = layer(home, "theirs", wheels, ours=False)  # made by hand (virtualenv, as the seed does)
    poetry = make_venv(home / ".cache" / "pypoetry" / "virtualenvs" / "webapp-AbCdEf-py3.11")  # poetry's default
    os.utime(poetry / "pyvenv.cfg", (LONG_AGO, LONG_AGO))
    holder = hold_lock(locked)
    base = home / "miniconda3" / "envs" / "py311_ai"
    os.utime(base / "conda-meta" / "history", (LONG_AGO, LONG_AGO))  # an old base, with layers on it
    _, listing = await fetch_json(jp_fetch, "environments")
    ids = {env["path"]: env["id"] for env in listing["environments"]}
    kernel_id = await jp_serverapp.kernel_manager.start_kernel(kernel_name=f"{ids[str(running)]}-py")
    try:
        await started_long_ago(jp_data_dir, running)
        code, dry = await fetch_json(jp_fetch, "clean", method="POST", body=json.dumps({"unused_days": 30,
                                                                                       "dry_run": True}))  # fmt: skip
        assert code == 200, dry
        assert [env["path"] for env in dry["removed"]] == [str(old)]
        assert dry["removed"][0]["size_bytes"] == sizing.measure(str(old)).size_bytes
        kept = {env["path"]: env["reason"] for env in dry["kept"]}
        assert "a kernel (or another process) is running from it" in kept[str(running)]
        assert kept[str(locked)] == "a job is working on it"
        assert "jupyter_layenv did not create" in kept[str(base)]  # and it has layers: kept twice over
        assert str(recent) not in kept  # used (made) within 30 days: not even considered
        for other in (theirs, poetry):  # no kernel start is no proof of disuse for an env another tool made
            assert "jupyter_layenv did not create: clean never removes one" in kept[str(other)], kept
        [cache] = [cache for cache in dry["caches"] if cache["cache"] == str(uv_cache)]
        only_old = archives(uv_cache)["onlyold"]
        assert (cache["cache"], cache["entries"]) == (str(uv_cache), 1)  # onlyold's; bigpkg is linked by recent
        assert cache["bytes"] >= os.stat(only_old / "onlyold" / "__init__.py").st_blocks * 512
        assert dry["bytes_freed"] == dry["removed"][0]["size_bytes"] + sum(c["bytes"] for c in dry["caches"])
        assert old.exists() and only_old.exists() and not audit  # a dry run changes nothing

        # the CLI, another process, sees the same (the kernel through /proc, the job through the lock)
        env = {**os.environ, "HOME": str(home)}
        env.pop("PYTHONPATH", None)
        out = subprocess.run([JUPYTER, "layenv", "clean", "--unused-days", "30", "--dry-run", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        cli = json.loads(out.stdout)
        assert cli["removed"] == dry["removed"] and cli["caches"] == dry["caches"]
        assert {k["path"]: k["reason"] for k in cli["kept"]}[str(running)].startswith("a kernel")

        code, done = await fetch_json(jp_fetch, "clean", method="POST", body=json.dumps({"unused_days": 30}))
        assert code == 200, done
        assert done["removed"] == dry["removed"] and done["bytes_freed"] == dry["bytes_freed"]
        assert not old.exists() and running.exists() and locked.exists() and recent.exists()
        assert theirs.exists() and poetry.exists()
        assert not only_old.exists() and archives(uv_cache).keys() == {"bigpkg"}
        assert [(e["action"], e["env"], e["outcome"]) for e in audit] == [
            ("delete", ids[str(old)], "succeeded"),
            ("cleanup", "package cache", "succeeded"),
        ]
        assert audit[0]["detail"] == "clean: no kernel started for 30 days"
    finally:
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)
        holder.kill()
        holder.wait()
    # uv still installs onlyold from its pruned cache (its entries pointing at the removed wheel are gone too)
    again = make_venv(tmp_path / "again", tool="uv")
    uv_install(again, wheels, "onlyold", hardlink=True)
    assert (again / "lib").exists()


async def test_usage_sums_per_root_and_owner_largest_first(jp_fetch, clean_create_home: Path, wheels: Path):
    small = layer(clean_create_home, "small", wheels)
    large = layer(clean_create_home, "large", wheels, "bigpkg", "onlyold")
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        code, usage = await fetch_json(jp_fetch, "usage")
        assert code == 200
        if usage["measuring"] == 0:
            break
        assert asyncio.get_running_loop().time() < deadline, usage
        await asyncio.sleep(0.2)
    envs = {env["path"]: env for env in usage["environments"]}
    assert envs[str(large)]["size_bytes"] == sizing.measure(str(large)).size_bytes
    sizes = [env["size_bytes"] for env in usage["environments"]]
    assert sizes == sorted(sizes, reverse=True)
    root = next(r for r in usage["roots"] if r["root"] == str(clean_create_home / ".virtualenvs"))
    assert root["environments"] == 2 and root["scope"] == "user"
    assert root["size_bytes"] == envs[str(small)]["size_bytes"] + envs[str(large)]["size_bytes"]
    [owner] = root["owners"]
    assert owner["owner"] == usage["user"] and owner["size_bytes"] == root["size_bytes"]
    conda = next(r for r in usage["roots"] if r["root"] == str(clean_create_home / "miniconda3"))
    assert conda["environments"] == 2  # the Conda root and its env
    assert [r["size_bytes"] for r in usage["roots"]] == sorted((r["size_bytes"] for r in usage["roots"]), reverse=True)


async def test_usage_says_which_groups_are_configured_roots_and_what_the_others_are(
    jp_fetch, jp_serverapp, clean_create_home: Path, tmp_path: Path
):
    """A group is called a root only when it is one: the folder of an env known only through environments.txt, a
    folder named in a .condarc's envs_dirs, the server's own environment and a Conda install in a default place each
    say what they are."""
    ksm = jp_serverapp.kernel_spec_manager
    corp = make_conda_prefix(tmp_path / "corp" / "conda", conda_root=True)
    lonely = make_conda_prefix(tmp_path / "elsewhere" / "lonely")
    listed = tmp_path / "environments.txt"
    listed.write_text(f"{lonely}\n")
    ksm.environments_files = [str(listed)]
    rc_env = make_conda_prefix(tmp_path / "rc_envs" / "rc_env")
    condarc = tmp_path / "condarc"
    condarc.write_text(f"envs_dirs:\n  - {rc_env.parent}\n")
    ksm.condarc_paths = [str(condarc)]
    ksm.conda_roots = [*ksm.conda_roots, str(corp)]  # the defaults and one the administrator named
    make_venv(clean_create_home / ".virtualenvs" / "mine")
    code, usage = await fetch_json(jp_fetch, "usage")
    assert code == 200, usage
    groups = {r["root"]: (r["kind"], r["source"]) for r in usage["roots"]}
    assert groups[str(clean_create_home / ".virtualenvs")] == ("folder", "create-root")
    assert groups[str(corp)] == ("conda-install", "configured")
    assert groups[str(clean_create_home / "miniconda3")] == ("conda-install", "default")
    assert groups[str(lonely.parent)] == ("folder", "found")
    assert groups[str(rc_env.parent)] == ("folder", "condarc")
    assert groups[os.path.dirname(sys.prefix)] == ("folder", "server-prefix")


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "send a JSON object"),
        ({"unused_days": -1}, "unused_days must be a whole number"),
        ({"unused_days": "30"}, "unused_days must be a whole number"),
        ({"dry_run": "yes"}, "dry_run must be true or false"),
        ({"days": 3}, "unknown field(s) days"),
    ],
)
async def test_clean_refuses_bad_input(jp_fetch, body, message: str):
    code, reply = await fetch_json(jp_fetch, "clean", method="POST", body=json.dumps(body))
    assert code == 400 and message in reply["message"], reply


def test_clean_command_refuses_bad_days_in_its_own_words(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(tmp_path)
    out = subprocess.run([JUPYTER, "layenv", "clean", "--unused-days", "-3"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out
    assert out.stderr.strip() == "error: --unused-days must be a whole number of days from 0 to 36500, not -3"


def test_the_clean_command_audits_every_removal_to_the_servers_event_handlers(
    clean_create_home: Path, uv_cache: Path, wheels: Path, tmp_path: Path
):
    """`jupyter layenv clean` emits the server's audit events to the handlers the server's config names."""
    home = clean_create_home
    old = layer(home, "old", wheels, "onlyold")
    log, config = tmp_path / "audit.log", tmp_path / "cli-config"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text(
        f"import logging\nc.EventLogger.handlers = [logging.FileHandler({str(log)!r})]\n"
    )
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    out = subprocess.run([JUPYTER, "layenv", "clean", "--unused-days", "30", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (removed,) = json.loads(out.stdout)["removed"]
    assert removed["path"] == str(old) and not old.exists()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    ours = [(e["action"], e["outcome"], e["path"]) for e in events if "jupyter_layenv" in e["__schema__"]]
    assert ours == [("delete", "succeeded", str(old)), ("cleanup", "succeeded", str(uv_cache))], events
    (delete,) = [e for e in events if e.get("action") == "delete"]
    assert delete["detail"] == "clean: no kernel started for 30 days" and delete["env"] == removed["id"]
