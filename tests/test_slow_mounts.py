"""A hung mount never stalls a listing: its roots are reported as "not responding" and the rest is listed.

The mount is real: a FUSE loopback (tests/loopfs.py) whose daemon is stopped with SIGSTOP, so every ``stat``
under it blocks, as under a dead NFS server. Listings run in a watchdog thread: one that hangs fails the test
instead of hanging it (the fixture thaws the mount at the end, which frees any stuck thread).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from envtree import Tree, make_conda_prefix, make_layered_env, make_venv
from layenv_api import fetch_json
from loopfs import LoopMount

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS, Discovery, DiscoveryConfig
from jupyter_layenv.service import LayenvService

T = TypeVar("T")
ROOT_TIMEOUT = 1.0
BOUND = 10.0  # "does not hang": far above ROOT_TIMEOUT, never a measure of speed
NOT_RESPONDING = "not responding: "
REMOTE_KERNEL = "venv-remote_plain-py"


@dataclass
class Remote:
    """A Conda root and a venv root on the FUSE mount, and a local layer whose base is that Conda root."""

    mount: LoopMount
    conda: Path  # <mount>/conda: a Conda root (its base env)
    venvs: Path  # <mount>/venvs: a venv root
    plain: Path  # <mount>/venvs/remote_plain, a kernel (venv-remote_plain-py)
    layers: Path  # a local venv root
    layer: Path  # <layers>/on_remote: uv layer made with <mount>/conda/bin/python

    @property
    def roots(self) -> tuple[Path, Path]:
        return self.conda, self.venvs

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The mount's daemon stopped inside the block, and always resumed after it."""
        self.mount.freeze()
        try:
            yield
        finally:
            self.mount.thaw()


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """The FUSE mount; skipped (or failed, with LAYENV_FUSE_REQUIRED=1) only where FUSE cannot be mounted."""
    top = tmp_path_factory.mktemp("slow-mount")
    source = top / "server"
    make_conda_prefix(source / "conda", conda_root=True)
    make_venv(source / "venvs" / "remote_plain", ipykernel=True)
    mount = LoopMount(source, top / "mnt")
    problem = mount.mount()
    if problem:
        # What .ci/run installs (libfuse2, fusepy) must be there; what the machine lends (the FUSE device, the
        # right to mount) may be missing: then the test is skipped with the reason, never passed.
        machine_limit = problem.startswith("no /dev/fuse") or any(
            text in problem.lower() for text in ("not permitted", "permission denied")
        )
        if os.environ.get("LAYENV_FUSE_REQUIRED") and not machine_limit:
            pytest.fail(f"LAYENV_FUSE_REQUIRED is set, but {problem}")
        pytest.skip(f"needs a FUSE mount to freeze: {problem} (install libfuse2 and fusepy; run as root)")
    try:
        layers = top / "layers"
        layer = make_layered_env(mount.path / "conda", layers / "on_remote", tool="uv")
        venvs = mount.path / "venvs"
        yield Remote(mount, mount.path / "conda", venvs, venvs / "remote_plain", layers, layer)
    finally:
        mount.unmount()


def bounded(call: Callable[[], T], limit: float = BOUND) -> T:
    """``call()`` in a daemon thread; a hang fails the test after ``limit`` seconds."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as err:
            outcome.append((False, err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident or 0)
        where = "".join(traceback.format_stack(frame)) if frame else ""
        raise AssertionError(f"the listing did not return within {limit} s: it hangs on the frozen mount in\n{where}")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _ksm(remote: Remote) -> LayenvKernelSpecManager:
    """The defaults (the fixture HOME's envs) plus the remote roots and the local layer root."""
    ksm = LayenvKernelSpecManager(root_timeout=ROOT_TIMEOUT)
    ksm.conda_roots = [*ksm.conda_roots, str(remote.conda)]
    ksm.venv_roots = [*ksm.venv_roots, str(remote.venvs), str(remote.layers)]
    return ksm


def _probe_threads() -> int:
    return sum(thread.name.startswith("layenv-root-probe") for thread in threading.enumerate())


def _assert_remote_skipped(listing: dict, remote: Remote, home: Tree, timeout: float) -> None:
    skipped = {entry["path"]: entry["reason"] for entry in listing["skipped"]}
    for root in remote.roots:
        assert str(root) in skipped, listing["skipped"]
        reason = skipped[str(root)]
        assert reason.startswith(NOT_RESPONDING + str(root)), reason
        assert f"did not answer within {timeout:g} s" in reason and "retried on the next listing" in reason
    # a local layer whose base is on the frozen mount: its python link leads there, so it is not read either
    assert skipped[str(remote.layer)].startswith(f"{NOT_RESPONDING}its base {remote.conda} is in {remote.conda}")
    paths = {env["path"] for env in listing["environments"]}
    assert {str(home.plain), str(home.py311_ai), str(home.proj_uv)} <= paths  # everything else is listed
    assert not {path for path in paths if path.startswith(str(remote.mount.path))}
    assert str(remote.layer) not in paths


def _not_responding(listing: dict) -> list[dict]:
    return [entry for entry in listing["skipped"] if entry["reason"].startswith(NOT_RESPONDING)]


def _assert_remote_back(listing: dict, remote: Remote) -> None:
    envs = {env["path"]: env for env in listing["environments"]}
    assert not _not_responding(listing)
    assert envs[str(remote.plain)]["kind"] == "venv"
    assert envs[str(remote.conda)]["kind"] == "conda-base"
    assert (envs[str(remote.layer)]["kind"], envs[str(remote.layer)]["base"]) == ("layered", str(remote.conda))


def _listed_again(ksm: LayenvKernelSpecManager) -> dict:
    """Listings until no root is reported as not responding: the stuck probes return moments after SIGCONT."""
    deadline = time.monotonic() + BOUND
    while True:
        listing = bounded(ksm.listing)
        if not _not_responding(listing) or time.monotonic() > deadline:
            return listing
        time.sleep(0.05)


def _settle() -> float:
    """Seconds until every file just made is older than discovery's racy window, so that a listing trusts its
    mtimes and the next one takes the warm path (which must not stat what lies in a frozen root either)."""
    return RACY_WINDOW_NS / 1e9 + 0.1


def test_a_warm_listing_skips_a_frozen_mount_and_recovers(home: Tree, remote: Remote):
    time.sleep(_settle())
    ksm = _ksm(remote)
    _assert_remote_back(bounded(ksm.listing), remote)  # cached: every env and its dependencies known
    specs_before = bounded(ksm.get_all_specs)
    assert REMOTE_KERNEL in specs_before
    with remote.frozen():
        _assert_remote_skipped(bounded(ksm.listing), remote, home, ROOT_TIMEOUT)
        threads = _probe_threads()
        for _ in range(3):  # the unchanged listing: its dependencies under the mount are not stat'ed
            _assert_remote_skipped(bounded(ksm.listing), remote, home, ROOT_TIMEOUT)
        assert _probe_threads() == threads  # the stuck probe is not asked again: no pile-up of threads
        specs = bounded(ksm.get_all_specs)
        assert "venv-plain-py" in specs and "conda-py311_ai.proj_uv-py" in specs
        assert REMOTE_KERNEL not in specs
    _assert_remote_back(_listed_again(ksm), remote)
    assert set(bounded(ksm.get_all_specs)) == set(specs_before)


def test_a_cold_listing_skips_a_frozen_mount_and_recovers(home: Tree, remote: Remote):
    """A fresh manager (a server started while the mount hangs): nothing cached, nothing under the mount read."""
    time.sleep(_settle())
    with remote.frozen():
        ksm = _ksm(remote)
        _assert_remote_skipped(bounded(ksm.listing), remote, home, ROOT_TIMEOUT)
        _assert_remote_skipped(bounded(ksm.listing), remote, home, ROOT_TIMEOUT)
    _assert_remote_back(_listed_again(ksm), remote)


def test_one_frozen_group_root_of_a_glob_leaves_the_other_groups_listed(home: Tree, remote: Remote, tmp_path: Path):
    """``/srv/layenv/*`` with one group's directory on a dead server (an automount, here a link to the mount)."""
    groups = tmp_path / "groups"
    local_env = make_venv(groups / "chem" / "chem_env")
    (groups / "physics").symlink_to(remote.venvs)
    frozen_group, remote_env = groups / "physics", groups / "physics" / remote.plain.name
    time.sleep(_settle())

    def ksm() -> LayenvKernelSpecManager:
        return LayenvKernelSpecManager(root_timeout=ROOT_TIMEOUT, group_roots=[str(groups / "*")])

    def check_frozen(listing: dict) -> None:
        skipped = {entry["path"]: entry["reason"] for entry in _not_responding(listing)}
        assert list(skipped) == [str(frozen_group)], listing["skipped"]
        assert f"did not answer within {ROOT_TIMEOUT:g} s" in skipped[str(frozen_group)]
        envs = {env["path"]: env for env in listing["environments"]}
        assert envs[str(local_env)]["scope"] == "group" and str(home.plain) in envs
        assert str(remote_env) not in envs

    warm = ksm()
    assert str(remote_env) in {env["path"] for env in bounded(warm.listing)["environments"]}
    with remote.frozen():
        check_frozen(bounded(warm.listing))
        check_frozen(bounded(warm.listing))
        cold = ksm()  # a server started while that group's server is down
        check_frozen(bounded(cold.listing))
        check_frozen(bounded(cold.listing))
    for manager in (warm, cold):
        listing = _listed_again(manager)
        assert not _not_responding(listing)
        assert {str(remote_env), str(local_env)} <= {env["path"] for env in listing["environments"]}


def test_a_local_root_that_becomes_a_mount_point_is_asked_again(home: Tree, remote: Remote, tmp_path: Path):
    """A local root that just answered is trusted for a while, unless the mount table changes (an automount)."""
    late = tmp_path / "late"
    late.mkdir()
    ksm = LayenvKernelSpecManager(root_timeout=ROOT_TIMEOUT)
    ksm.venv_roots = [*ksm.venv_roots, str(late)]
    assert not _not_responding(bounded(ksm.listing))
    mount = LoopMount(remote.mount.source / "venvs", late)
    problem = mount.mount()
    assert problem is None, problem
    try:
        mount.freeze()
        listing = bounded(ksm.listing)
        assert [entry["path"] for entry in _not_responding(listing)] == [str(late)]
        assert str(home.plain) in {env["path"] for env in listing["environments"]}
        mount.thaw()
        listing = _listed_again(ksm)
        assert str(late / remote.plain.name) in {env["path"] for env in listing["environments"]}
    finally:
        mount.unmount()


def test_a_root_mounted_over_before_the_first_promotion_is_not_watched_from_the_old_answer(
    home: Tree, remote: Remote, tmp_path: Path
):
    """The first listing's probe finds a local root; before the promotion after it runs, a file system is mounted
    there and hangs. The promotion must not watch that root from the probe's old answer (the directory the mount
    hides): it would ask the frozen mount, holding the discovery lock, and every listing would hang. Broken by:
    reading the mount table only at the first promotion (a mount before that is no change), or keeping on with
    the roots a mount did not touch among those watched already (this one was not watched yet)."""
    late = tmp_path / "late"
    late.mkdir()
    discovery = Discovery(
        DiscoveryConfig(venv_roots=[str(home.plain.parent), str(late)], root_timeout=ROOT_TIMEOUT, notifications=True)
    )
    try:
        bounded(lambda: discovery.discover(promote=False))  # the watcher is made; nothing promoted yet
        mount = LoopMount(remote.mount.source / "venvs", late)
        problem = mount.mount()
        assert problem is None, problem
        try:
            mount.freeze()
            time.sleep(1.5)  # past FUSE's attribute cache (1 s): a look at the mount point now asks the frozen daemon
            discovery.promote()
            time.sleep(0.5)  # the promotion pass runs (50 ms after its wake)
            listing = bounded(discovery.discover)
            assert str(late) in {entry.path for entry in listing.skipped}, listing.skipped
            mount.thaw()
            deadline = time.monotonic() + BOUND
            while str(late / remote.plain.name) not in {env.path for env in bounded(discovery.discover).environments}:
                assert time.monotonic() < deadline, "the mounted root was never listed once it answered"
                time.sleep(0.2)
        finally:
            mount.thaw()
            mount.unmount()
    finally:
        discovery.close()


def test_conda_files_naming_envs_on_a_frozen_mount_do_not_stall_a_listing(home: Tree, remote: Remote, tmp_path: Path):
    """conda records every env it creates in environments.txt, and a .condarc may name envs dirs on the mount."""
    listing_file = tmp_path / "environments.txt"
    listing_file.write_text(f"{remote.conda}\n{home.listed_env}\n")
    condarc = tmp_path / ".condarc"
    condarc.write_text(f"envs_dirs:\n  - {remote.conda / 'envs'}\n")
    time.sleep(_settle())
    with remote.frozen():
        ksm = _ksm(remote)
        ksm.environments_files = [str(listing_file)]
        ksm.condarc_paths = [str(condarc)]
        listing = bounded(ksm.listing)
        assert str(remote.conda) in {entry["path"] for entry in _not_responding(listing)}
        assert str(home.listed_env) in {env["path"] for env in listing["environments"]}
    assert str(remote.conda) in {env["path"] for env in _listed_again(ksm)["environments"]}


def test_a_conda_create_check_does_not_ask_a_root_another_listing_found_hung(
    home: Tree, remote: Remote, tmp_path: Path
) -> None:
    """Whether a new Conda env would be listed (GET policy, each Conda create) compares its directory with the
    scanned ones by id; a root the probe is still waiting for is not asked. Broken by: ``samefile`` with every
    scanned directory (a concurrent listing had found the root hung, so the check blocked its thread there)."""
    envs = tmp_path / "conda-envs"
    envs.mkdir()
    ksm = _ksm(remote)
    ksm.environments_files = []  # where a new Conda env is recorded: not read, so its directory must be scanned
    time.sleep(_settle())
    service = LayenvService(
        ksm=ksm,
        user_root=str(tmp_path / "user-root"),
        jobs_dir=str(tmp_path / "jobs"),
        conda_envs_dir=str(envs),
        conda_channels=["file:///nowhere"],
    )
    try:
        _assert_remote_back(bounded(service.ksm.listing), remote)  # a complete scan: the mount's roots in it
        assert str(remote.venvs) in (service.ksm.discovery.scanned() or ())
        with remote.frozen():
            _assert_remote_skipped(bounded(_ksm(remote).listing), remote, home, ROOT_TIMEOUT)  # another listing
            unseen = bounded(lambda: service.unseen(str(envs)))
        assert unseen is not None and f"discovery does not look in {envs}" in unseen
    finally:
        service.usage.stop()


# ---------------------------------------------------------------------------------------- through the server

SERVER_ROOT_TIMEOUT = 4.0  # long enough that another request is surely answered while a listing waits


@pytest.fixture
def jp_home_dir(home_tree: Tree) -> Path:
    return home_tree.home


@pytest.fixture
def jp_server_config(home_tree: Tree, remote: Remote) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvKernelSpecManager": {
            "conda_roots": [str(home_tree.conda_root), str(remote.conda)],
            "venv_roots": [str(home_tree.home / ".virtualenvs"), str(remote.venvs), str(remote.layers)],
            "root_timeout": SERVER_ROOT_TIMEOUT,
        },
    }


async def test_the_server_answers_while_a_mount_hangs(jp_fetch, jp_serverapp, home_tree: Tree, remote: Remote):
    await asyncio.sleep(_settle())
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    _assert_remote_back(listing, remote)
    with remote.frozen():
        pending = asyncio.create_task(fetch_json(jp_fetch, "environments"))
        status = await asyncio.wait_for(jp_fetch("api", "status"), BOUND)
        assert status.code == 200
        assert not pending.done()  # the listing still waits for the frozen roots; the event loop does not
        code, listing = await asyncio.wait_for(pending, BOUND + SERVER_ROOT_TIMEOUT)
        assert code == 200
        _assert_remote_skipped(listing, remote, home_tree, SERVER_ROOT_TIMEOUT)
        # later requests do not wait for the stuck root again
        code, listing = await asyncio.wait_for(fetch_json(jp_fetch, "environments"), BOUND)
        _assert_remote_skipped(listing, remote, home_tree, SERVER_ROOT_TIMEOUT)
        specs = json.loads((await asyncio.wait_for(jp_fetch("api", "kernelspecs"), BOUND)).body)["kernelspecs"]
        assert "conda-py311_ai-py" in specs
    deadline = asyncio.get_running_loop().time() + BOUND
    while True:
        code, listing = await fetch_json(jp_fetch, "environments")
        if not _not_responding(listing) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    _assert_remote_back(listing, remote)


async def test_a_kernel_start_does_not_wait_for_a_hung_mount_on_the_event_loop(
    jp_fetch, jp_serverapp, home_tree: Tree, remote: Remote
):
    """jupyter_client asks for the spec synchronously, on the server's event loop, when a kernel starts: a name the
    last listing knows is answered from it (the provisioner reads the env again at launch), not after a rescan that
    waits for the frozen root. Broken by: rescanning there (the loop then stalls for the whole root_timeout)."""
    await asyncio.sleep(_settle())
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    _assert_remote_back(listing, remote)
    ksm = jp_serverapp.kernel_spec_manager
    with remote.frozen():
        started = time.monotonic()
        spec = ksm.get_kernel_spec("conda-py311_ai-py")  # on this test's event loop, as jupyter_client calls it
        stalled = time.monotonic() - started
    assert stalled < SERVER_ROOT_TIMEOUT / 2, f"the event loop waited {stalled:.1f} s for the frozen root"
    assert spec.metadata["kernel_provisioner"]["provisioner_name"] == "layenv-provisioner"
    assert spec.metadata["layenv"]["path"] == str(home_tree.py311_ai)
