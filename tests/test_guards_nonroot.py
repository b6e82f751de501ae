"""Shared-server promises checked with the product running as a normal (non-root) user, root or not.

Root passes every permission check (and is a member of every group root), so these behaviours need a normal user
to be seen at all: group-writable envs under umask 022, group roots hidden from non-members, deletes that are
whole or nothing (one rename, then the removal; refused up front when a part could not be removed), and another
user's env planted in one's own root (root only: only root can plant it).

Run as a normal user, the CLI runs as that user on trees in a temporary directory. Run as root, it runs as the
accounts tests/unixusers.py makes (alice, a member; carol, not), with the shared install every user can read.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jupyter_process import JUPYTER
from unixusers import (  # noqa: F401  (fixtures)
    UnixUser,
    group_sharing_problems,
    shared_area_fixture,
    unix_users_fixture,
)

from jupyter_layenv.locators import scoped
from jupyter_layenv.model import DELETING_PREFIX

AS_ROOT = os.geteuid() == 0
HOOK = Path(__file__).parent / "rmtree_hook"
DROP = ("PYTHONPATH", "VIRTUAL_ENV", "XDG_", "UV_", "PIP_", "CONDA", "JUPYTER")


@dataclass
class Normal:
    """A normal user, the CLI it runs, and what it creates on: a Conda base and a group root of its group."""

    user: UnixUser | None  # None: this process's own (non-root) user
    outsider: UnixUser | None  # a user outside the group (only when made as root)
    jupyter: str
    home: Path
    base: Path
    wheelhouse: Path
    group_root: Path
    gid: int
    hook: Path = HOOK  # tests/rmtree_hook, where the user can read it

    def layenv(
        self, *args: str, user: UnixUser | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """``jupyter layenv ARGS`` as the user (umask 022), configured for the test's base, roots and wheelhouse."""
        user = user or self.user
        home = user.home if user is not None else self.home
        environ = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
        environ.update(HOME=str(home), JUPYTER_DATA_DIR=str(home / ".guards" / "data"),
                       JUPYTER_CONFIG_DIR=str(home / ".guards" / "config"), **(env or {}))  # fmt: skip
        if user is not None:
            environ.update(USER=user.name, LOGNAME=user.name)
        config = [
            f"--LayenvKernelSpecManager.env_paths=['{self.base}']",
            f"--LayenvKernelSpecManager.group_roots=['{self.group_root}']",
            f"--LayenvService.find_links=['{self.wheelhouse}']",
            "--LayenvService.offline=True",
        ]
        argv = [self.jupyter, "layenv", *args, *config]
        kwargs = user.popen_kwargs() if user is not None else {"umask": 0o022}
        return subprocess.run(argv, env=environ, cwd=home, capture_output=True, text=True, timeout=300, **kwargs)

    def create(self, name: str, *extra: str) -> Path:
        proc = self.layenv("create", name, "--base", str(self.base), *extra)
        assert proc.returncode == 0, proc.stderr
        root = self.group_root if "--root" in extra else self.home / ".virtualenvs"
        return root / name


@pytest.fixture
def normal(request, tmp_path: Path) -> Iterator[Normal]:
    if not AS_ROOT:
        create_home = request.getfixturevalue("clean_create_home")
        group_root = tmp_path / "srv" / "team"
        group_root.mkdir(parents=True)
        group_root.chmod(0o2770)
        yield Normal(None, None, JUPYTER, create_home, create_home / "miniconda3" / "envs" / "py311_ai",
                     request.getfixturevalue("wheelhouse"), group_root, os.getgid())  # fmt: skip
        return
    users, area = request.getfixturevalue("unix_users"), request.getfixturevalue("shared_area")
    group_root = area.root / "srv" / "guards" / "team"
    group_root.mkdir(parents=True)
    os.chown(group_root, 0, users.gid)
    group_root.chmod(0o2770)  # after chown, which clears setgid
    # the checkout may sit where other users cannot read it (a 0700 home): alice gets a copy of the hook in the area
    hook = shutil.copytree(HOOK, area.root / "srv" / "guards" / "rmtree_hook")
    try:
        yield Normal(users.alice, users.carol, str(area.jupyter), users.alice.home, area.base, area.wheelhouse,
                     group_root, users.gid, hook)  # fmt: skip
    finally:
        shutil.rmtree(group_root.parent)
        for user in (users.alice, users.carol):
            for leftover in (user.home / ".virtualenvs", user.home / ".guards"):
                shutil.rmtree(leftover, ignore_errors=True)


def test_an_env_a_normal_user_creates_in_a_group_root_is_the_groups_under_umask_022(normal: Normal):
    """Broken by: share_with_group not run on the new env (or the build not run with the group's umask): with
    the user's umask 022 its files are then not group-writable and the other members cannot update or delete it."""
    path = normal.create("shared", "--root", "group:team")
    assert path.stat().st_gid == normal.gid
    assert group_sharing_problems(path, normal.gid) == []


def test_a_group_roots_envs_are_hidden_from_non_members(normal: Normal):
    """Broken by: listing a group root's envs to everyone (membership ignored), or counting a user as a member
    of every group. The locator is asked for a non-root user inside and outside the group; with root, the full
    CLI too, as carol."""
    env = normal.create("members_only", "--root", "group:team")
    scan = lambda d: ([os.path.join(d, n) for n in os.listdir(d)], [])  # noqa: E731
    uid = (normal.user.uid if normal.user else os.getuid()) or 1000  # never root: root is in every group
    outside = frozenset({normal.gid + 1, normal.gid + 2})
    for gids, seen in ((frozenset({normal.gid}), True), (outside, False)):
        located, roots = scoped.locate([], [str(normal.group_root)], scan, uid=uid, gids=gids)
        assert [root.member for root in roots] == [seen]
        assert (str(env) in {c.path for c in located.candidates}) is seen
    if normal.outsider is not None:
        for user, seen in ((normal.user, True), (normal.outsider, False)):
            proc = normal.layenv("list", "--json", user=user)
            assert proc.returncode == 0, proc.stderr
            listing = json.loads(proc.stdout)
            assert (str(env) in {e["path"] for e in listing["environments"]}) is seen, (user.name, listing)
            assert str(env) not in {s["path"] for s in listing["skipped"]}


def test_a_normal_users_delete_renames_the_env_away_before_removing_it(normal: Normal):
    """Broken by: removing the env in place (no rename first): a listing meanwhile sees it half-deleted."""
    env = normal.create("doomed")
    record = (normal.user.home if normal.user else normal.home) / ".guards" / "rmtree.jsonl"
    hook = {"PYTHONPATH": str(normal.hook), "LAYENV_TEST_RMTREE_RECORD": str(record),
            "LAYENV_TEST_RMTREE_UNDER": str(env.parent)}  # fmt: skip
    proc = normal.layenv("delete", "doomed", env=hook)
    assert proc.returncode == 0, proc.stderr
    assert not env.exists()
    removals = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(removals) == 1, removals
    removed = Path(removals[0]["path"])
    assert removed.parent == env.parent and removed.name.startswith(f"{DELETING_PREFIX}doomed-"), removals
    assert "doomed" not in removals[0]["siblings"], "the env was still under its name while it was being removed"
    assert not removed.exists()


def test_a_delete_a_normal_user_could_only_do_in_part_is_refused_whole(normal: Normal):
    """Broken by: dropping the check for directories this user cannot empty (root can empty all of them): the
    delete would then stop half-way, leaving a broken env under its name or a hidden remainder."""
    env = normal.create("stuck")
    stuck = sorted(p for p in (env / "lib").rglob("*") if p.is_dir())[0]
    files = sorted(str(p) for p in env.rglob("*"))
    stuck.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)  # r-x: its entries cannot be removed
    try:
        proc = normal.layenv("delete", "stuck")
        assert proc.returncode != 0 and "not writable" in proc.stderr, proc.stderr
        assert sorted(str(p) for p in env.rglob("*")) == files
        assert not [p for p in env.parent.iterdir() if p.name.startswith(DELETING_PREFIX)]
    finally:
        stuck.chmod(0o755)


@pytest.mark.skipif(not AS_ROOT, reason="an env owned by another user can only be planted by root")
def test_another_users_env_inside_ones_own_root_is_not_ones_to_delete(normal: Normal):
    """Broken by: dropping the owner check for envs in one's own root (carol's env, world-writable, planted in
    alice's ~/.virtualenvs, would be deleted by alice's CLI)."""
    env = normal.create("planted")
    carol = normal.outsider
    for item in [env, *env.rglob("*")]:
        os.lchown(item, carol.uid, carol.gid)
        if item.is_dir() and not item.is_symlink():
            item.chmod(0o777)  # nothing but ownership stands in the way
    listed = json.loads(normal.layenv("list", "--json").stdout)
    entry = next(e for e in listed["environments"] if e["path"] == str(env))
    assert entry["scope"] == "user" and "belongs to another user" in (entry["delete_blocked_reason"] or ""), entry
    proc = normal.layenv("delete", "planted")
    assert proc.returncode != 0 and f"belongs to another user (uid {carol.uid})" in proc.stderr, proc.stderr
    assert env.is_dir() and env.stat().st_uid == carol.uid
