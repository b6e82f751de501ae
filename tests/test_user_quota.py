"""A user's disk quota used up (EDQUOT) while the disk itself has room: what a university's shared server does.

The quota is real for the writers: alice (a normal user; root is exempt from quotas) creates and changes layers on
a file system whose every write past her limit fails with ``Disk quota exceeded``, while ``df`` shows plenty free.
That file system is tests/quotafs.py (FUSE), as kernel quotas need a kernel built with CONFIG_QUOTA. What must hold:
an error that says it is her quota on that file system (not "no space left", the disk has space), what to do,
nothing half-made left, the name free, and an audit event that says what happened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from envtree import layer_dists
from jupyter_process import JupyterProcess
from quotafs import QuotaMount
from unixusers import (  # noqa: F401  (fixtures)
    SharedArea,
    UnixUser,
    Users,
    requires_root,
    shared_area_fixture,
    start_server,
    unix_users_fixture,
)
from wheelhouse import write_wheel

pytestmark = requires_root

MIB = 1024 * 1024
DROP = ("PYTHONPATH", "VIRTUAL_ENV", "XDG_", "UV_", "PIP_", "CONDA", "JUPYTER")


@dataclass
class Quota:
    """alice's ``~/.virtualenvs`` on a file system where her quota is 32 MiB (the disk: 128 MiB)."""

    user: UnixUser
    area: SharedArea
    root: Path
    wheels: Path  # bulky (48 MiB on disk) and small
    audit_log: Path

    def layenv(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``jupyter layenv ARGS`` as alice, auditing to ``audit_log`` (the server's ``EventLogger.handlers``)."""
        home = self.user.home
        env = {k: v for k, v in self.user.environ().items() if not k.startswith(DROP)}
        env.update(JUPYTER_CONFIG_DIR=str(home / ".quota" / "config"), JUPYTER_DATA_DIR=str(home / ".quota" / "data"))
        config = [
            f"--LayenvService.find_links=['{self.wheels}', '{self.area.wheelhouse}']",
            "--LayenvService.offline=True",
            f"--LayenvKernelSpecManager.system_roots=['{self.area.conda_root}']",
        ]
        return self.user.run([str(self.area.jupyter), "layenv", *args, *config], env=env, timeout=300)

    def audit(self) -> list[tuple[str, str, str]]:
        lines = self.audit_log.read_text().splitlines() if self.audit_log.exists() else []
        events = [json.loads(line) for line in lines]
        return [
            (e["action"], e["outcome"], e.get("detail") or "") for e in events if "jupyter_layenv" in e["__schema__"]
        ]

    def entries(self) -> list[str]:
        return sorted(n for n in os.listdir(self.root) if n != ".layenv-locks")

    @contextmanager
    def server(self) -> Iterator[JupyterProcess]:
        """A real server as alice, auditing to ``audit_log``; stopped and its work dir removed afterwards."""
        work = self.user.home / "jupyter-quota"
        (work / "config").mkdir(parents=True)
        (work / "config" / "jupyter_server_config.py").write_text(
            f"import logging\nc.EventLogger.handlers = [logging.FileHandler({str(self.audit_log)!r})]\n"
        )
        server = start_server(self.area, self.user, "quota", find_links=[str(self.wheels)])
        try:
            yield server
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)

    def fill(self) -> Path:
        """Use up alice's quota with a file of her own."""
        filler = self.root / "filler"
        self.user.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=10000"])
        assert filler.stat().st_size > 0
        return filler


@pytest.fixture(scope="module")
def quota_wheels(shared_area: SharedArea) -> Path:
    directory = shared_area.root / "quota-wheels"  # where alice can read it (the checkout may be under a 0700 /root)
    bulk = "x" * 16 * MIB  # compresses to nothing in the wheel, 16 MiB on disk
    write_wheel(directory, "bulky", "1.0", {f"bulky/part{i}.txt": bulk for i in range(3)} | {"bulky/__init__.py": ""})
    write_wheel(directory, "small", "1.0", {"small/__init__.py": "SMALL = 1\n"})
    for item in [directory, *directory.iterdir()]:
        item.chmod(0o755 if item.is_dir() else 0o644)
    return directory


@pytest.fixture
def quota(unix_users: Users, shared_area: SharedArea, quota_wheels: Path, tmp_path: Path) -> Iterator[Quota]:
    """alice's user root on a 128 MiB disk with a 32 MiB quota for her; unmounted and removed afterwards."""
    alice = unix_users.alice
    backing, root = shared_area.root / "quota-disk", alice.home / ".virtualenvs"
    for directory in (backing, root):
        directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0755", "tmpfs", str(backing)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(root)
        shutil.rmtree(backing)
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    mount = QuotaMount(backing, root, block_limit=32 * MIB, inode_limit=100_000)
    try:
        alice.chown(backing)
        why = mount.mount()
        if why:
            # As in test_slow_mounts: what .ci/run installs must work; only the machine's FUSE device may be missing.
            if os.environ.get("LAYENV_FUSE_REQUIRED") and not why.startswith("no /dev/fuse"):
                pytest.fail(f"LAYENV_FUSE_REQUIRED is set, but {why}")
            pytest.skip(why)
        config = alice.home / ".quota" / "config"
        config.mkdir(parents=True)
        audit_log = alice.home / ".quota" / "audit.log"
        (config / "jupyter_server_config.py").write_text(
            f"import logging\nc.EventLogger.handlers = [logging.FileHandler({str(audit_log)!r})]\n"
        )
        for item in (alice.home / ".quota", config, config / "jupyter_server_config.py"):
            alice.chown(item)
        yield Quota(alice, shared_area, root, quota_wheels, audit_log)
    finally:
        mount.unmount()
        subprocess.run(["umount", str(backing)], check=False)
        for leftover in (backing, root, alice.home / ".quota"):
            shutil.rmtree(leftover, ignore_errors=True)


def assert_says_quota(message: str, root: Path) -> None:
    """Her quota, on that file system, what to do; not "no space left" (the disk has more than 64 MiB free)."""
    assert f"your quota on the file system mounted at {root} is used up" in message, message
    assert "no space left" not in message.lower() and "not within your quota" in message, message
    assert "delete some of your files" in message and "ask your administrator" in message, message


def test_a_create_and_an_install_over_the_users_quota_say_so_and_leave_nothing(quota: Quota):
    base = str(quota.area.base)
    made = quota.layenv("create", "small", "--base", base)  # an env itself (pip included) fits
    assert made.returncode == 0, made.stderr

    proc = quota.layenv("create", "bulky", "--base", base, "--package", "bulky")
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: "), proc.stderr
    assert_says_quota(error, quota.root)
    assert "bulky 1.0) needed about 48.0 MiB" in error, error
    assert quota.entries() == ["small"]
    action, outcome, detail = quota.audit()[-1]
    assert (action, outcome) == ("create", "failed") and "quota" in detail and "no space left" not in detail

    before = layer_dists(quota.root / "small")
    proc = quota.layenv("install", "small", "bulky")
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert_says_quota(error, quota.root)
    assert "the environment is as it was before" in error and "nothing of this environment" not in error, error
    assert layer_dists(quota.root / "small") == before
    assert quota.entries() == ["small"]
    assert quota.audit()[-1][:2] == ("change", "failed")

    again = quota.layenv("create", "bulky", "--base", base)  # the name is free: no "exists already"
    assert again.returncode == 0, again.stderr


def test_a_create_with_the_quota_used_up_is_refused_at_once_in_rest_words(quota: Quota):
    """A real server as alice: nothing can even start (507), the reply says quota, the name stays free."""
    filler = quota.fill()
    with quota.server() as server:
        listing = server.get("layenv/environments")
        base_id = next(e["id"] for e in listing["environments"] if e["path"] == str(quota.area.base))
        code, body = server.request("POST", "layenv/environments", {"name": "full", "base": base_id})
        assert code == 507 and body["reason"] == "disk quota exceeded", body
        message = body["message"]
        assert_says_quota(message, quota.root)
        assert quota.entries() == ["filler"]
        filler.unlink()
        code, body = server.request("POST", "layenv/environments", {"name": "full", "base": base_id})
        assert code == 202, body
    (action, outcome, detail), *_ = quota.audit()
    assert (action, outcome) == ("create", "refused") and detail == message


def test_an_install_into_a_layer_over_rest_that_runs_out_of_quota_fails_and_leaves_the_layer_as_it_was(quota: Quota):
    """A real server as alice: the install is accepted (her quota has room then), its job fails saying quota and
    that the layer is as it was, the layer's packages are unchanged, and the audit says the change failed."""
    made = quota.layenv("create", "small", "--base", str(quota.area.base))
    assert made.returncode == 0, made.stderr
    layer = quota.root / "small"
    before = layer_dists(layer)
    with quota.server() as server:
        listing = server.get("layenv/environments")
        env_id = next(e["id"] for e in listing["environments"] if e["path"] == str(layer))
        code, job = server.request("POST", f"layenv/environments/{env_id}/packages", {"add": ["bulky"]})
        assert code == 202, job
        done = server.follow(job["id"], timeout=300)
    assert done["state"] == "failed", done
    error = done["error"]
    assert_says_quota(error, quota.root)
    assert "the environment is as it was before" in error and "nothing of this environment" not in error, error
    assert layer_dists(layer) == before
    assert quota.entries() == ["small"]
    action, outcome, detail = quota.audit()[-1]
    assert (action, outcome) == ("change", "failed") and "quota" in detail and "no space left" not in detail, detail
