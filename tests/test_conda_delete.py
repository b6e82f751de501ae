"""Deleting a Conda env jupyter_layenv did not create (made by conda, mamba, pixi): allowed when the server's user
owns it and nothing depends on it; never an install root, a system root's env, another user's, a base with layers
or one a job is building a layer on. A real server (a process) and the CLI, on real Conda-style prefixes (tests'
CPython copied, see tests/envtree.py) that no layenv.json marks as jupyter_layenv's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from envtree import make_conda_prefix, make_layered_env
from isolated_ksm import looking_only_at
from jupyter_process import JUPYTER, JupyterProcess
from layenv_api import StallingIndex

FOREIGN_UID = 4242
NAMES = ("root", "mine", "based", "theirs", "shared", "system")


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, Path]:
    """A HOME with a Conda install (conda's own envs in it), a layer on one of them, and an administrator's env."""
    home = tmp_path / "home"
    root = make_conda_prefix(home / "miniforge3", conda_root=True)
    paths = {"home": home, "root": root, "system": make_conda_prefix(tmp_path / "opt" / "conda", conda_root=True)}
    for name in ("mine", "based", "theirs"):
        paths[name] = make_conda_prefix(root / "envs" / name)
    paths["onit"] = make_layered_env(paths["based"], home / ".virtualenvs" / "onit")
    paths["shared"] = make_conda_prefix(paths["system"] / "envs" / "shared")
    if os.getuid() == 0:  # another user's env, next to the server user's own
        for directory, dirs, files in os.walk(paths["theirs"]):
            for name in [directory, *(os.path.join(directory, entry) for entry in dirs + files)]:
                os.lchown(name, FOREIGN_UID, FOREIGN_UID)
    listing = home / ".conda" / "environments.txt"
    listing.parent.mkdir()
    listing.write_text("".join(f"{paths[name]}\n" for name in ("root", "mine", "based", "theirs")))
    assert not any((paths[name] / "layenv.json").exists() for name in ("mine", "based", "theirs"))  # conda's own
    return paths


def test_a_conda_env_the_user_owns_is_deleted_the_rest_refused(tmp_path: Path, machine: dict[str, Path]):
    index = StallingIndex()
    config = {
        "LayenvKernelSpecManager": {"system_roots": [str(machine["system"])]},
        "LayenvService": {"index_url": index.url},
    }
    server = JupyterProcess(tmp_path / "work", machine["home"], config_files={"jupyter_server_config.json": config})
    try:
        server.wait_ready("layenv/environments")
        listing = server.get("layenv/environments")["environments"]
        ids = {name: next(env["id"] for env in listing if env["path"] == str(machine[name])) for name in NAMES}
        reasons = {
            name: next(env["delete_blocked_reason"] for env in listing if env["id"] == ids[name]) for name in NAMES
        }
        assert reasons["mine"] is None, reasons
        assert "install root" in reasons["root"]
        assert "base of onit" in reasons["based"]
        assert "system" in reasons["shared"]
        if os.getuid() == 0:
            assert "another user" in reasons["theirs"]
        assert "install root" in reasons["system"]
        for name in ("root", "based", "shared", "system", *(["theirs"] * (os.getuid() == 0))):
            code, body = server.request("DELETE", f"layenv/environments/{ids[name]}")
            assert code == 403 and body["message"] == reasons[name], body
        assert all(machine[name].is_dir() for name in ("root", "based", "shared", "theirs"))

        # a layer being built on it: the env is busy until the job ends (cancelled here)
        code, job = server.request("POST", "layenv/environments", {"name": "wip", "base": ids["mine"],
                                                                 "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        server.wait_for_step(job["id"], "resolve")  # the resolver waits on the index
        code, body = server.request("DELETE", f"layenv/environments/{ids['mine']}")
        assert code == 409 and "wip" in body["message"], body
        assert machine["mine"].is_dir()
        code, cancelled = server.request("DELETE", f"layenv/jobs/{job['id']}")
        assert code == 200 and cancelled["state"] == "cancelled", cancelled

        code, body = server.request("DELETE", f"layenv/environments/{ids['mine']}")
        assert code == 204, body
        assert not machine["mine"].exists()
        listed = (machine["home"] / ".conda" / "environments.txt").read_text().splitlines()
        assert listed == [str(machine[name]) for name in ("root", "based", "theirs")]  # as conda remove --all does
        assert str(machine["mine"]) not in {env["path"] for env in server.get("layenv/environments")["environments"]}
    finally:
        server.stop()
        index.close()

    # the CLI: the same rules, in its own words
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {
        "HOME": str(machine["home"]),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "work" / "config"),
    }
    proc = _cli("delete", str(machine["based"]), env=env)
    assert proc.returncode != 0 and "base of onit" in proc.stderr, proc.stderr
    proc = _cli("delete", str(machine["root"]), env=env)
    assert proc.returncode != 0 and "install root" in proc.stderr and "POST" not in proc.stderr, proc.stderr
    assert _cli("delete", str(machine["onit"]), env=env).returncode == 0
    proc = _cli("delete", str(machine["based"]), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not machine["based"].exists() and machine["root"].is_dir()
    listed = (machine["home"] / ".conda" / "environments.txt").read_text().splitlines()
    assert listed == [str(machine[name]) for name in ("root", "theirs")]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([JUPYTER, "layenv", *args], capture_output=True, text=True, env=env, timeout=180)


def test_a_conda_env_holding_another_env_is_refused_and_names_it(tmp_path: Path):
    """The "holds" rule, found through each env's parent directories (Discovered.held): a plain venv made inside a
    Conda env (not a layer on it) keeps the Conda env from being deleted, and only that env says so."""
    from envtree import make_venv

    from jupyter_layenv.service import LayenvService

    root = make_conda_prefix(tmp_path / "miniforge3", conda_root=True)
    holder = make_conda_prefix(root / "envs" / "holder")
    alone = make_conda_prefix(root / "envs" / "alone")
    make_venv(holder / "tool")
    ksm = looking_only_at(conda_roots=[str(root)], kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
    service = LayenvService(ksm=ksm, user_root=str(tmp_path / "user-root"), jobs_dir=str(tmp_path / "jobs"))
    try:
        reasons = {env["path"]: env["delete_blocked_reason"] for env in service.listing_now()["environments"]}
    finally:
        service.usage.stop()
    assert str(holder / "tool") in reasons, reasons
    assert "holds the environments tool" in reasons[str(holder)]
    assert reasons[str(alone)] is None
    assert "install root" in reasons[str(root)]


@pytest.mark.parametrize("locked_before", [False, True])
def test_an_env_with_a_name_near_the_file_name_limit_is_deleted(tmp_path: Path, locked_before: bool):
    """conda accepts a 252-character env name; its delete renamed it to `.layenv-deleting-<name>-<8 hex>`, over the
    255-byte limit of a file name: a traceback (OSError: File name too long). Where jupyter_layenv had locked an env
    of that root before, its lock file name was too long as well: "another process is working on it"."""
    home = tmp_path / "home"
    root = make_conda_prefix(home / "miniforge3", conda_root=True)
    env = make_conda_prefix(root / "envs" / ("n" * 252))
    if locked_before:
        (root / "envs" / ".layenv-locks").mkdir()
    environ = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "HOME": str(home)}
    done = subprocess.run([JUPYTER, "layenv", "delete", env.name], env=environ, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert not env.exists() and [p.name for p in (root / "envs").iterdir() if p.name != ".layenv-locks"] == []
