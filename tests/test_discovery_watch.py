"""Change notifications (inotify): a listing skips the ``stat`` of promoted paths, and stays what a fresh scan says.

Real file systems, real venvs (uv). Each test that can lists with notifications off and on, and with them on first
checks that the paths the change touches were promoted (so that the listing would skip them): a rule the watcher
breaks then shows as a stale listing. Promotion runs in a background thread; ``promoted`` waits for it.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from envtree import (
    YESTERDAY,
    add_pure_python_package,
    make_conda_prefix,
    make_layered_env,
    make_venv,
    settle,
    site_packages,
)
from loopfs import LoopMount
from mounts import ramfs, tmpfs
from oscalls import BUILTIN_OPEN, LOOKS, record_os_calls

from jupyter_layenv.discovery import RACY_WINDOW_NS, Discovery, DiscoveryConfig
from jupyter_layenv.discovery.watch import _PROMOTER, Watcher, supported
from jupyter_layenv.model import Discovered

pytestmark = pytest.mark.skipif(not supported(), reason="inotify: Linux only (elsewhere the stat design alone)")

ON_OFF = [pytest.param(False, id="stat"), pytest.param(True, id="inotify")]


@pytest.fixture
def discoveries() -> Iterator[list[Discovery]]:
    made: list[Discovery] = []
    yield made
    for discovery in made:
        discovery.close()


def _open(made: list[Discovery], config: DiscoveryConfig) -> Discovery:
    discovery = Discovery(config)
    made.append(discovery)
    return discovery


def _config(root: Path, notify: bool, **kwargs: object) -> DiscoveryConfig:
    return DiscoveryConfig(venv_roots=[str(root)], notifications=notify, **kwargs)  # type: ignore[arg-type]


def promoted(discovery: Discovery, *paths: Path) -> None:
    """Lists until ``paths`` are promoted: a mount elsewhere on the machine demotes everything, and a file changed
    a moment ago waits until the file system's clock has passed its ctime (stamped finer than that clock)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        discovery.discover()
        assert discovery.watching()
        assert discovery.watcher is not None
        if all(discovery.watcher.skips(str(path)) for path in paths):
            return
        time.sleep(0.01)
    missing = [str(path) for path in paths if not discovery.watcher.skips(str(path))]
    watcher = discovery.watcher
    state = {path: (watcher._also.get(path), path in watcher._refused, os.lstat(path).st_ctime_ns) for path in missing}
    raise AssertionError(f"not promoted: {state} {watcher._root_ids} {watcher._forced} {watcher._full}")


def as_fresh(listing: Discovered, config: DiscoveryConfig) -> Discovered:
    fresh = Discovery(DiscoveryConfig(**{**config.__dict__, "notifications": False})).discover()
    assert listing.environments == fresh.environments
    assert listing.skipped == fresh.skipped
    return listing


def paths(listing: Discovered) -> set[str]:
    return {env.path for env in listing.environments}


def kernels(listing: Discovered) -> dict[str, int]:
    return {env.path: int(env.has_ipykernel) for env in listing.environments}


def add_ipykernel_marker(env: Path) -> Path:
    """What discovery takes for an installed ipykernel: its dist-info and package directory."""
    site = site_packages(env)
    (site / "ipykernel").mkdir()
    (site / "ipykernel" / "__init__.py").write_text("")
    dist = site / "ipykernel-6.29.5.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ipykernel\nVersion: 6.29.5\n")
    return site


def bump_version(cfg: Path, through: Path | None = None) -> str:
    """Edits ``version_info`` of a pyvenv.cfg in place (same inode, its directory's mtime unchanged); the new one."""
    text = cfg.read_text()
    version = next(line.split("=")[1].strip() for line in text.splitlines() if line.startswith("version_info"))
    other = version[:-1] + ("8" if version[-1] != "8" else "7")
    with open(through or cfg, "r+") as handle:
        handle.write(text.replace(f"version_info = {version}", f"version_info = {other}"))
    return other


def versions(listing: Discovered) -> dict[str, str | None]:
    return {env.path: env.python_version for env in listing.environments}


@pytest.fixture
def venvs(tmp_path: Path) -> Path:
    root = tmp_path / "venvs"
    for name in ("a", "b"):
        make_venv(root / name, tool="uv")
        os.utime(root / name / "pyvenv.cfg", (YESTERDAY, YESTERDAY))  # settled too: promotable
    settle(tmp_path)
    return root


@pytest.mark.parametrize("notify", ON_OFF)
def test_new_and_removed_envs_are_listed_at_once(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: skipping the venv root after an entry was made or removed in it (IN_CREATE/IN_DELETE leave its
    own mtime moved: the root must be checked again)."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, venvs, site_packages(venvs / "a"))
    make_venv(venvs / "new", tool="uv")
    assert str(venvs / "new") in paths(as_fresh(discovery.discover(), config))
    settle(venvs)
    if notify:
        promoted(discovery, venvs)
    shutil.rmtree(venvs / "a")
    assert str(venvs / "a") not in paths(as_fresh(discovery.discover(), config))


@pytest.mark.parametrize("notify", ON_OFF)
def test_a_new_env_changed_right_after_its_first_listing(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: trusting what a listing read again without the watches that would report a later change (a new
    env's directories have none yet; the venv root, read again after its event, has)."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, venvs)
    new = make_venv(venvs / "new", tool="uv")
    assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 0
    if notify:
        assert discovery.watcher is not None
        assert discovery.watcher.skips(str(venvs))  # read again after its event, its watch held: promoted at once
    add_ipykernel_marker(new)
    make_venv(venvs / "newer", tool="uv")
    listing = as_fresh(discovery.discover(), config)
    assert kernels(listing)[str(new)] == 1
    assert str(venvs / "newer") in paths(listing)


def test_what_a_listing_reads_again_unwatched_is_checked_again(venvs: Path, discoveries: list[Discovery]):
    """Broken by: promoting a path read again inside its racy window that has no watch (here the watch cap keeps the
    new env unwatched): a change right after would be missed."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    promoted(discovery, venvs)
    assert discovery.watcher is not None
    discovery.watcher.max_watches = len(discovery.watcher._wds)  # nothing more is watched
    new = make_venv(venvs / "new", tool="uv")
    assert kernels(discovery.discover())[str(new)] == 0
    assert discovery.watching()
    assert kernels(discovery.discover())[str(new)] == 0  # inside the racy window: the new env read again
    add_ipykernel_marker(new)
    assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 1


def _listing_right_after_a_new_env(discovery: Discovery, new: Path, config: DiscoveryConfig) -> None:
    """The listing that finds ``new`` (made a moment ago: inside the racy window), its kernel not yet there."""
    assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 0


def test_a_new_env_is_not_read_again_inside_its_racy_window(
    venvs: Path, discoveries: list[Discovery], monkeypatch: pytest.MonkeyPatch
):
    """Broken by: reading a new env before watching it (its paths then wait for the background thread, and until
    they settle, 2 s, every listing reads the env again: 6x a warm listing at 500 envs)."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    promoted(discovery, venvs, site_packages(venvs / "a"))
    monkeypatch.setattr(Watcher, "wake", lambda self: None)  # what the listing itself promotes, not the thread
    new = make_venv(venvs / "new", tool="uv")
    _listing_right_after_a_new_env(discovery, new, config)
    calls = record_os_calls(monkeypatch, (*LOOKS, BUILTIN_OPEN))
    assert kernels(discovery.discover())[str(new)] == 0
    assert [path for path in calls.paths() if path.startswith(str(new))] == []


def test_a_new_env_changed_in_the_same_tick_with_its_mtime_set_back(
    venvs: Path, discoveries: list[Discovery], monkeypatch: pytest.MonkeyPatch
):
    """Broken by: promoting a new env's site-packages watched after the listing read it (or not watched at all):
    ipykernel installed right after, its mtime put back as it was, makes no difference a ``stat`` can see."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    promoted(discovery, venvs, site_packages(venvs / "a"))
    monkeypatch.setattr(Watcher, "wake", lambda self: None)
    new = make_venv(venvs / "new", tool="uv")
    _listing_right_after_a_new_env(discovery, new, config)
    site = site_packages(new)
    assert discovery.watcher is not None
    assert discovery.watcher.skips(str(site))
    before = os.stat(site)
    add_ipykernel_marker(new)
    os.utime(site, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 1


@pytest.mark.parametrize("notify", ON_OFF)
def test_an_unwatched_directory_changed_inside_its_racy_window_is_seen(
    tmp_path: Path, notify: bool, discoveries: list[Discovery]
):
    """Broken by: a warm listing that ``stat``s only the paths it kept as not promoted and leaves out one no event
    reports: the site-packages of a layer's base outside every root (never watched), changed inside its racy window
    with its mtime put back to the same tick, or of a base a later listing first read (its entries new)."""
    root, outside = tmp_path / "venvs", tmp_path / "outside"
    base = make_conda_prefix(outside / "base")
    layer = make_layered_env(base, root / "layer", tool="uv")
    make_venv(root / "plain", tool="uv")
    settle(tmp_path)
    config = _config(root, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, root, site_packages(layer))
    site = site_packages(base)
    add_pure_python_package(site, "marker")  # the base's site-packages moves into its racy window
    assert kernels(as_fresh(discovery.discover(), config))[str(layer)] == 0
    tick = os.stat(site).st_mtime_ns
    assert kernels(discovery.discover())[str(layer)] == 0  # inside the window: read again, the same
    add_ipykernel_marker(base)  # no event: nothing outside the root is watched
    os.utime(site, ns=(tick, tick))
    assert time.time_ns() - tick < RACY_WINDOW_NS, "too slow to test the window"
    assert kernels(as_fresh(discovery.discover(), config))[str(layer)] == 1

    other = make_conda_prefix(outside / "other")
    second = make_layered_env(other, root / "second", tool="uv")
    assert kernels(as_fresh(discovery.discover(), config))[str(second)] == 0  # its base's entries new
    settle(tmp_path)
    discovery.discover()
    if notify:
        promoted(discovery, root, site_packages(second))
    add_ipykernel_marker(other)
    assert kernels(as_fresh(discovery.discover(), config))[str(second)] == 1


@pytest.mark.parametrize("notify", ON_OFF)
def test_a_new_env_where_no_event_is_trusted_is_checked_after_the_listing_that_found_it(
    venvs: Path, tmp_path: Path, notify: bool, discoveries: list[Discovery]
):
    """Broken by: keeping the paths a warm listing ``stat``s from before a listing that added to the signature with
    no event to tell (a root on ramfs, never promoted, next to a watched one): the new env's site-packages is left
    unchecked and its new ipykernel unseen."""
    with ramfs(tmp_path / "ram") as ram:
        config = DiscoveryConfig(venv_roots=[str(venvs), str(ram)], notifications=notify)
        discovery = _open(discoveries, config)
        if notify:
            promoted(discovery, venvs, site_packages(venvs / "a"))
        new = make_venv(ram / "new", tool="uv")
        assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 0
        if notify:
            assert discovery.watching()
            assert discovery.watcher is not None
            assert not discovery.watcher.skips(str(site_packages(new)))
        add_ipykernel_marker(new)
        assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 1


@pytest.mark.parametrize("how", ["symlink", "mount"])
def test_a_new_env_behind_a_symlink_or_a_mount_is_not_promoted_ahead(
    venvs: Path, tmp_path: Path, how: str, discoveries: list[Discovery], monkeypatch: pytest.MonkeyPatch
):
    """Broken by: watching a new env ahead through a symlink (a change where it points makes no event on the link's
    watches) or on another file system (a FUSE mount: its changes may come from elsewhere)."""
    elsewhere = tmp_path / "elsewhere"
    make_venv(elsewhere / "new", tool="uv")
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    promoted(discovery, venvs, site_packages(venvs / "a"))
    monkeypatch.setattr(Watcher, "wake", lambda self: None)
    new = venvs / "new"
    mount = LoopMount(elsewhere / "new", new)
    if how == "symlink":
        os.symlink(elsewhere / "new", new)
    else:
        problem = mount.mount()
        if problem:
            pytest.skip(f"needs a FUSE mount: {problem}")
    try:
        _listing_right_after_a_new_env(discovery, new, config)
        assert discovery.watcher is not None
        assert not discovery.watcher.skips(str(site_packages(new)))
        add_ipykernel_marker(elsewhere / "new")
        assert kernels(as_fresh(discovery.discover(), config))[str(new)] == 1
    finally:
        if how == "mount":
            mount.unmount()


def test_pyvenv_cfg_edited_in_place_is_seen(venvs: Path, discoveries: list[Discovery]):
    """Broken by: ignoring IN_MODIFY of a promoted file (with notifications on, a venv's pyvenv.cfg is watched; a
    stat-only listing leaves it out of the signature, one stat less per venv, and does not see such an edit)."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    cfg = venvs / "a" / "pyvenv.cfg"
    promoted(discovery, cfg)
    other = bump_version(cfg)
    listing = as_fresh(discovery.discover(), config)
    assert versions(listing)[str(venvs / "a")] == other


def test_pyvenv_cfg_edited_through_a_hard_link_elsewhere(venvs: Path, tmp_path: Path, discoveries: list[Discovery]):
    """Broken by: watching a file through its directory alone: an edit through another link of the same inode makes
    an event on the file's own watch only."""
    cfg = venvs / "a" / "pyvenv.cfg"
    other = tmp_path / "other.cfg"
    os.link(cfg, other)
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    promoted(discovery, cfg)
    version = bump_version(cfg, through=other)
    assert versions(as_fresh(discovery.discover(), config))[str(venvs / "a")] == version


def test_pyvenv_cfg_edited_before_its_watch_is_seen(
    venvs: Path, discoveries: list[Discovery], monkeypatch: pytest.MonkeyPatch
):
    """Broken by: trusting a file watched after the scan that read it without checking it did not change in
    between (its ctime against the scan's start): the edit made no event, there was no watch yet."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    monkeypatch.setattr(Watcher, "wake", lambda self: None)
    discovery.discover()  # the cold scan reads pyvenv.cfg; no promotion yet
    version = bump_version(venvs / "a" / "pyvenv.cfg")
    monkeypatch.undo()
    assert discovery.watcher is not None
    discovery.watcher.wake()
    assert discovery.watching()
    assert versions(as_fresh(discovery.discover(), config))[str(venvs / "a")] == version


@pytest.mark.parametrize("notify", ON_OFF)
def test_a_package_installed_and_removed_in_site_packages(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: skipping a promoted site-packages after entries were made in it (ipykernel appears) or removed."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    site = site_packages(venvs / "a")
    if notify:
        promoted(discovery, site)
    assert kernels(discovery.discover())[str(venvs / "a")] == 0
    add_ipykernel_marker(venvs / "a")
    assert kernels(as_fresh(discovery.discover(), config))[str(venvs / "a")] == 1
    settle(site)
    if notify:
        promoted(discovery, site)
    shutil.rmtree(site / "ipykernel")
    shutil.rmtree(site / "ipykernel-6.29.5.dist-info")
    assert kernels(as_fresh(discovery.discover(), config))[str(venvs / "a")] == 0


@pytest.mark.parametrize("notify", ON_OFF)
def test_an_env_renamed(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: keeping the promoted paths of a renamed env (IN_MOVED_FROM/TO on its parent's watch)."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, venvs, site_packages(venvs / "a"))
    os.rename(venvs / "a", venvs / "renamed")
    assert {str(venvs / "renamed"), str(venvs / "b")} == paths(as_fresh(discovery.discover(), config))


@pytest.mark.parametrize("notify", ON_OFF)
def test_an_ancestor_renamed(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: watching a promoted path alone, not every directory between it and its root: renaming
    ``lib/python3.X`` makes no event on site-packages' own watch, only on ``lib``'s."""
    add_ipykernel_marker(venvs / "a")
    settle(venvs)
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    site = site_packages(venvs / "a")
    if notify:
        promoted(discovery, site)
    assert kernels(discovery.discover())[str(venvs / "a")] == 1
    os.rename(site.parent, site.parent.with_name(site.parent.name + ".moved"))
    assert kernels(as_fresh(discovery.discover(), config)).get(str(venvs / "a"), 0) == 0


@pytest.mark.parametrize("notify", ON_OFF)
def test_an_env_replaced_by_a_symlink(venvs: Path, tmp_path: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: trusting promoted paths under a directory now reached through a symlink."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, site_packages(venvs / "a"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rename(venvs / "a", elsewhere / "a")
    os.symlink(elsewhere / "a", venvs / "a")
    as_fresh(discovery.discover(), config)


@pytest.mark.parametrize("notify", ON_OFF)
def test_a_root_deleted_and_recreated(venvs: Path, notify: bool, discoveries: list[Discovery]):
    """Broken by: keeping promoted paths under a root whose directory was deleted (IN_DELETE_SELF, IN_IGNORED)."""
    config = _config(venvs, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, venvs, site_packages(venvs / "b"))
    shutil.rmtree(venvs)
    assert paths(as_fresh(discovery.discover(), config)) == set()
    make_venv(venvs / "b", tool="uv")
    settle(venvs)
    assert paths(as_fresh(discovery.discover(), config)) == {str(venvs / "b")}


def test_a_root_symlink_pointed_elsewhere(tmp_path: Path, discoveries: list[Discovery]):
    """Broken by: not checking a root's identity on each listing: a root that is a symlink, pointed at another
    directory, makes no event on the watched one. Every mtime here is the same settled one, so only the identity
    tells (a stat-only listing misses it: not tested with notifications off)."""
    notify = True
    one, two = tmp_path / "one", tmp_path / "two"
    make_venv(one / "a", tool="uv")
    make_venv(two / "b", tool="uv")
    root = tmp_path / "root"
    os.symlink(one, root)
    settle(tmp_path)
    config = _config(root, notify)
    discovery = _open(discoveries, config)
    if notify:
        promoted(discovery, root, site_packages(root / "a"))
    os.symlink(two, tmp_path / "root.new")
    os.replace(tmp_path / "root.new", root)
    assert paths(as_fresh(discovery.discover(), config)) == {str(root / "b")}


def test_a_queue_overflow_demotes_everything(venvs: Path, discoveries: list[Discovery]):
    """Broken by: ignoring IN_Q_OVERFLOW: the events after it are lost, the edit of a's pyvenv.cfg among them."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    cfg = venvs / "a" / "pyvenv.cfg"
    promoted(discovery, cfg, venvs / "b" / "pyvenv.cfg")
    assert discovery.watcher is not None
    before = discovery.watcher.forgotten
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    noisy = [venvs / "b" / "pyvenv.cfg", venvs / "b"]  # alternated: two equal events in a row are merged
    for index in range(limit + 4000):
        os.utime(noisy[index % 2], (YESTERDAY + index, YESTERDAY))
    version = bump_version(cfg)
    listing = as_fresh(discovery.discover(), config)
    assert discovery.watcher.forgotten > before
    assert versions(listing)[str(venvs / "a")] == version


def test_a_root_on_fuse_is_never_promoted(tmp_path: Path, discoveries: list[Discovery]):
    """Broken by: promoting paths on a file system whose changes may come from elsewhere (here: the FUSE
    daemon's source directory, changed underneath the mount, as another host changes an NFS export)."""
    local = tmp_path / "local"
    make_venv(local / "l", tool="uv")
    settle(local)
    local_config = _config(local, True)
    local_discovery = _open(discoveries, local_config)
    promoted(local_discovery, local)

    source = tmp_path / "server"
    make_venv(source / "venvs" / "a", tool="uv")
    settle(source)
    mount = LoopMount(source, tmp_path / "mnt")
    problem = mount.mount()
    if problem:
        if os.environ.get("LAYENV_FUSE_REQUIRED") and not problem.startswith("no /dev/fuse"):
            pytest.fail(f"LAYENV_FUSE_REQUIRED is set, but {problem}")
        pytest.skip(f"needs a FUSE mount: {problem}")
    try:
        root = mount.path / "venvs"
        config = _config(root, True)
        discovery = _open(discoveries, config)
        discovery.discover()
        assert discovery.watching()
        assert discovery.watcher is not None
        assert not discovery.watcher.promoted
        assert discovery.watcher.calls["add_watch"] <= 1  # the root's watch, to learn its file system
        make_venv(source / "venvs" / "new", tool="uv")
        assert str(root / "new") in paths(as_fresh(discovery.discover(), config))
    finally:
        mount.unmount()


def test_a_mount_over_a_watched_directory_is_seen(venvs: Path, discoveries: list[Discovery]):
    """Broken by: keeping the paths under a root promoted when a file system is mounted over one of them (a mount makes
    no inotify event: the watches stay on the hidden directory). Here an empty site-packages hides ipykernel."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    env, site = venvs / "a", site_packages(venvs / "a")
    add_ipykernel_marker(env)
    settle(site)
    promoted(discovery, site)
    assert kernels(discovery.discover())[str(env)] == 1
    with tmpfs(site, "size=1m"):
        assert kernels(as_fresh(discovery.discover(), config))[str(env)] == 0
    assert kernels(as_fresh(discovery.discover(), config))[str(env)] == 1  # unmounted: ipykernel is back


def test_a_mount_elsewhere_keeps_what_is_promoted(venvs: Path, tmp_path: Path, discoveries: list[Discovery]):
    """Broken by: demoting everything at any change of the mount table. On a shared server homes are automounted as
    users log in: each would cost every user's server a listing of stat calls and a promotion pass."""
    config = _config(venvs, True)
    discovery = _open(discoveries, config)
    site = site_packages(venvs / "a")
    promoted(discovery, venvs, site)
    watcher = discovery.watcher
    assert watcher is not None
    forgotten, watches = watcher.forgotten, watcher.calls["add_watch"]
    with tmpfs(tmp_path / "elsewhere", "size=1m"):
        as_fresh(discovery.discover(), config)
        assert watcher.skips(str(venvs)) and watcher.skips(str(site))
        assert (watcher.forgotten, watcher.calls["add_watch"]) == (forgotten, watches)


def test_the_watch_cap_leaves_the_rest_to_stat(venvs: Path, discoveries: list[Discovery], caplog):
    """Broken by: promoting a path whose watches could not all be added, once the cap is reached."""
    config = _config(venvs, True, max_watches=4)
    discovery = _open(discoveries, config)
    with caplog.at_level(logging.INFO, logger="jupyter_layenv.discovery"):
        discovery.discover()
        assert discovery.watching()
        assert discovery.watcher is not None
        assert 0 < len(discovery.watcher.promoted) < len(discovery._signature)
        assert len(discovery.watcher._wds) <= 4
        add_ipykernel_marker(venvs / "b")
        make_venv(venvs / "new", tool="uv")
        listing = as_fresh(discovery.discover(), config)
        assert discovery.watching()
        assert kernels(listing)[str(venvs / "b")] == 1
        shutil.rmtree(venvs / "a")
        assert str(venvs / "a") not in paths(as_fresh(discovery.discover(), config))
    said = [record for record in caplog.records if "change notifications reached" in record.getMessage()]
    assert len(said) == 1


def _is_inotify(fd: int) -> bool:
    """Whether ``fd`` is an open inotify descriptor (a count of all of them would also see those of managers earlier
    tests left to the garbage collector, closed whenever it runs)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        return False


def test_closing_or_dropping_a_discovery_ends_its_thread_and_descriptors(venvs: Path):
    """Broken by: a watcher thread or inotify descriptor left behind by a manager that went away (a server whose
    kernel spec manager is remade on a config change would pile them up)."""
    discovery = Discovery(_config(venvs, True))
    discovery.discover()
    assert discovery.watching()
    watcher = discovery.watcher
    assert watcher is not None and watcher._mounts is not None
    fd, mounts = watcher._fd, watcher._mounts
    assert _is_inotify(fd)
    discovery.close()
    assert not _is_inotify(fd) and mounts.closed
    assert discovery.discover().environments  # listings go on, with stat alone
    del watcher

    dropped = Discovery(_config(venvs, True))
    dropped.discover()
    assert dropped.watching()
    watcher = dropped.watcher
    assert watcher is not None and watcher._mounts is not None
    fd, mounts = watcher._fd, watcher._mounts
    assert _is_inotify(fd)
    del dropped, watcher
    gc.collect()
    deadline = time.monotonic() + 5
    while (_is_inotify(fd) or not mounts.closed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _is_inotify(fd) and mounts.closed
    # one promotion thread for every watcher of the process, not one per manager made
    assert sum(thread.name == "layenv-watch" for thread in threading.enumerate()) == 1


def test_the_cli_does_not_watch():
    from jupyter_layenv.cli_base import LayenvCommand

    assert LayenvCommand().manager().change_notifications is False


def test_a_kernel_spec_managers_listing_promotes_only_once_its_table_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: the promotion thread started or woken inside the listing (it takes the GIL from the table build a
    cold listing makes next: +2 ms at 500 envs), or a listing whose promotion is never started."""
    from jupyter_layenv import LayenvKernelSpecManager
    from jupyter_layenv.kernels import build_table as real_build_table

    make_venv(tmp_path / "venvs" / "one", tool="uv")
    settle(tmp_path)
    ksm = LayenvKernelSpecManager(
        conda_roots=[], envs_dirs=[], environments_files=[], condarc_paths=[], venv_roots=[str(tmp_path / "venvs")],
        env_paths=[], include_server_prefix=False, kernel_dirs=[], root_timeout=0,
    )  # fmt: skip
    woken_before_table: list[bool] = []

    def build_table(*args: object, **kwargs: object) -> object:
        watcher = ksm.discovery.watcher
        woken_before_table.append(watcher is not None and (watcher._pending or watcher in _PROMOTER._watchers))
        return real_build_table(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("jupyter_layenv.kernelspecs.build_table", build_table)
    try:
        ksm.get_all_specs()
        assert woken_before_table == [False]
        assert ksm.discovery.watcher is not None and ksm.discovery.watching()
        assert ksm.discovery.watcher.skips(str(tmp_path / "venvs"))  # promoted once the listing had its table
    finally:
        ksm.discovery.close()
