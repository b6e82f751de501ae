"""Incremental listings: what a listing reads again after a change, and inside the racy window.

Real venvs (uv) in a venv root; every mtime is set to the past where a test needs a settled tree (as if the
last change were long ago), instead of sleeping out the 2 s racy window.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from envtree import YESTERDAY, make_conda_prefix, make_layered_env, make_venv, settle
from isolated_ksm import looking_only_at
from oscalls import LISTINGS, record_os_calls

import jupyter_layenv.discovery.build as build_module
import jupyter_layenv.discovery.scan as scan_module
from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS, Discovery, DiscoveryConfig


@pytest.fixture(autouse=True, params=[False, True], ids=["stat", "inotify"])
def notifications(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: with the stat design alone, and with change notifications on, where each listing waits for
    the background promotion to finish, so that the next listing skips every promoted path (a change the watcher
    misses then shows as an incremental listing that differs from a fresh one)."""
    if not request.param:
        return
    real_init, real_discover, real_promote = Discovery.__init__, Discovery.discover, Discovery.promote

    def init(self: Discovery, config: DiscoveryConfig, logger: object = None) -> None:
        real_init(self, dataclasses.replace(config, notifications=True), logger)  # type: ignore[arg-type]

    def discover(self: Discovery, *, promote: bool = True) -> object:
        result = real_discover(self, promote=promote)
        assert self.watching()
        return result

    def promote(self: Discovery) -> None:  # the kernel spec manager's listing promotes once its table is built
        real_promote(self)
        assert self.watching()

    monkeypatch.setattr(Discovery, "__init__", init)
    monkeypatch.setattr(Discovery, "discover", discover)
    monkeypatch.setattr(Discovery, "promote", promote)


@pytest.fixture(scope="module")
def venv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("incremental") / "venvs"
    for name in ("one", "two", "three"):
        make_venv(root / name, tool="uv")
        # settled too (with change notifications a venv's pyvenv.cfg is a dependency: one written a moment ago would
        # be re-read inside its racy window); not a hard link to anything, unlike some files settle() leaves alone
        os.utime(root / name / "pyvenv.cfg", (YESTERDAY, YESTERDAY))
    return root


class Reads:
    """The prefixes inspected and the directories listed during a listing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inspected: list[str] = []
        monkeypatch.setattr(scan_module, "inspect_prefix", self._recording(scan_module.inspect_prefix))
        self.calls = record_os_calls(monkeypatch, LISTINGS)

    def _recording(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def inspect(path: str, *args: object, **kwargs: object) -> Any:
            self.inspected.append(path)
            return real(path, *args, **kwargs)

        return inspect

    @property
    def listed(self) -> list[str]:
        return self.calls.paths()


def test_a_listing_inside_the_racy_window_rereads_only_the_racy_directories(
    venv_root: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: answering a just-modified directory with a full rescan of the tree (every env walked again and
    a new result built) on each listing of the 2 s after a change, instead of listing that directory again."""
    new = venv_root / "new"
    try:
        settle(venv_root)
        discovery = Discovery(DiscoveryConfig(venv_roots=[str(venv_root)]))
        discovery.discover()
        make_venv(new, tool="uv")  # written just now: its directories and the root are in the racy window
        first = discovery.discover()
        assert str(new) in {env.path for env in first.environments}
        reads = Reads(monkeypatch)
        second = discovery.discover()
        assert time.time_ns() - os.stat(new).st_mtime_ns < RACY_WINDOW_NS, "too slow to test the window"
        assert second is first  # nothing new: the same result, not a rebuilt one
        assert set(reads.inspected) <= {str(new)}
        assert {path for path in reads.listed if not path.startswith(str(new))} <= {str(venv_root)}
    finally:
        shutil.rmtree(new, ignore_errors=True)


def test_a_change_inside_the_racy_window_is_seen_by_the_recheck(venv_root: Path):
    """Broken by: trusting a re-read directory whose listing changed (the recheck must rebuild then)."""
    new, newer = venv_root / "new2", venv_root / "newer"
    try:
        settle(venv_root)
        discovery = Discovery(DiscoveryConfig(venv_roots=[str(venv_root)]))
        discovery.discover()
        make_venv(new, tool="uv")
        tick = os.stat(venv_root).st_mtime_ns
        assert str(new) in {env.path for env in discovery.discover().environments}
        make_venv(newer, tool="uv")
        os.utime(venv_root, ns=(tick, tick))  # the same clock tick: the root's mtime did not move
        assert time.time_ns() - tick < RACY_WINDOW_NS, "too slow to test the window"
        assert {str(new), str(newer)} <= {env.path for env in discovery.discover().environments}
        shutil.rmtree(newer)
        os.utime(venv_root, ns=(tick, tick))
        assert str(newer) not in {env.path for env in discovery.discover().environments}
    finally:
        shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(newer, ignore_errors=True)


def test_after_one_new_env_only_it_is_inspected_and_the_tree_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: inspecting unchanged envs again after one new env, or checking the tree twice (once to find
    the change, once more env by env)."""
    envs = tmp_path / "envs"
    base = make_conda_prefix(envs / "base311")
    make_layered_env(base, base / "layer", tool="uv")
    root = tmp_path / "venvs"
    make_venv(root / "plain", tool="uv")
    settle(tmp_path)
    discovery = Discovery(DiscoveryConfig(envs_dirs=[str(envs)], venv_roots=[str(root)]))
    before = discovery.discover()
    signature_size = len(discovery._signature)
    make_venv(root / "plain2", tool="uv")
    reads = Reads(monkeypatch)
    stats = record_os_calls(monkeypatch, ["stat"])
    after = discovery.discover()
    assert {env.path for env in after.environments} == {env.path for env in before.environments} | {
        str(root / "plain2")
    }
    assert reads.inspected == [str(root / "plain2")]
    # the signature check that found the change, the new env, and the few lookups of layers' bases: the unchanged
    # envs are not checked again one by one (that would be about the signature's size once more)
    assert len(stats.paths()) <= signature_size + 12, (signature_size, sorted(stats.paths()))


def test_after_one_new_env_only_it_is_built_and_a_deleted_base_rebuilds_its_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Broken by: deriving every env again after one new env (kinds, bases, names: a pass over the whole tree), or
    by keeping a layer's last answer when the base it was built on is deleted (its own files did not change)."""
    envs = tmp_path / "envs"
    base = make_conda_prefix(envs / "base311")
    root = tmp_path / "venvs"
    layer = make_layered_env(base, root / "layer", tool="uv")
    make_venv(root / "plain", tool="uv")
    settle(tmp_path)
    discovery = Discovery(DiscoveryConfig(envs_dirs=[str(envs)], venv_roots=[str(root)]))
    before = {env.path: env for env in discovery.discover().environments}
    built: list[str] = []
    real_venv_proto, real_conda_proto = build_module.Builder._venv_proto, build_module.Builder._conda_proto
    monkeypatch.setattr(
        build_module.Builder, "_venv_proto", lambda self, p, *a: built.append(p) or real_venv_proto(self, p, *a)
    )
    monkeypatch.setattr(
        build_module.Builder, "_conda_proto", lambda self, p, *a: built.append(p) or real_conda_proto(self, p, *a)
    )
    make_venv(root / "plain2", tool="uv")
    after = {env.path: env for env in discovery.discover().environments}
    assert built == [str(root / "plain2")]
    assert all(after[path] is env for path, env in before.items())  # the same objects: kernels.py reuses their rows

    settle(tmp_path)
    discovery.discover()
    shutil.rmtree(base)
    listing = discovery.discover()
    assert str(layer) not in {env.path for env in listing.environments}
    reasons = {skip.path: skip.reason for skip in listing.skipped}
    assert reasons[str(layer)].startswith("base deleted"), reasons
    fresh = Discovery(DiscoveryConfig(envs_dirs=[str(envs)], venv_roots=[str(root)])).discover()
    assert [skip.path for skip in listing.skipped] == [skip.path for skip in fresh.skipped]
    assert [env.path for env in listing.environments] == [env.path for env in fresh.environments]


def _config(envs: Path, root: Path) -> DiscoveryConfig:
    return DiscoveryConfig(envs_dirs=[str(envs)], venv_roots=[str(root)])


@dataclass
class _BaseLayerPlain:
    """A Conda base, a layer on it and a plain venv, settled, and a Discovery that has listed them once."""

    base: Path
    layer: Path
    plain: Path
    config: DiscoveryConfig
    discovery: Discovery


def _base_layer_plain(tmp_path: Path) -> _BaseLayerPlain:
    envs, root = tmp_path / "envs", tmp_path / "venvs"
    base = make_conda_prefix(envs / "base311")
    layer = make_layered_env(base, root / "layer", tool="uv")
    plain = make_venv(root / "plain", tool="uv")
    settle(tmp_path)
    config = _config(envs, root)
    discovery = Discovery(config)
    discovery.discover()
    return _BaseLayerPlain(base, layer, plain, config, discovery)


def test_after_a_base_is_deleted_an_incremental_listing_says_what_a_fresh_one_says(tmp_path: Path):
    """Broken by: keeping a layer's facts from before its base was deleted (its own directories did not change, but
    its python link now dangles): its reason then lacks the dangling link a fresh scan reports."""
    tree = _base_layer_plain(tmp_path)
    base, layer, plain, discovery = tree.base, tree.layer, tree.plain, tree.discovery
    shutil.rmtree(base)
    listing = discovery.discover()
    fresh = Discovery(tree.config).discover()
    assert "dangling link" in {skip.path: skip.reason for skip in fresh.skipped}[str(layer)]
    assert listing.skipped == fresh.skipped
    assert listing.environments == fresh.environments
    assert str(plain) in {env.path for env in listing.environments}


def test_a_deleted_env_leaves_no_memo_behind(tmp_path: Path):
    """Broken by: keeping what was built for an env after it is deleted (a server where envs come and go grows)."""
    tree = _base_layer_plain(tmp_path)
    base, layer, plain, discovery = tree.base, tree.layer, tree.plain, tree.discovery
    assert {str(layer), str(plain), str(base)} <= set(discovery._built.records)
    shutil.rmtree(plain)
    discovery.discover()
    assert str(plain) not in discovery._built.records
    assert str(plain) not in discovery._prefixes.entries  # nor its facts
    assert str(layer) in discovery._built.records
    shutil.rmtree(layer)
    shutil.rmtree(base)
    discovery.discover()
    assert not {str(layer), str(plain), str(base)} & set(discovery._built.records)


NATIVE: dict = {}  # no native kernelspecs: the same object from one table to the next, as the manager keeps it


def _table(discovered: object, previous: object = None, changes: object = None) -> object:
    from jupyter_layenv.kernels import Filters, build_table

    return build_table(
        discovered,
        NATIVE,
        display_name_format="{kernel} ({chain})",
        filters=Filters(),
        previous=previous,
        changes=changes,
    )


def test_incremental_listings_and_kernel_tables_equal_fresh_ones_through_adds_and_removals(tmp_path: Path):
    """Broken by: an incremental update (new or deleted env, in a venv root, a Conda envs dir or nested in a Conda
    env) that differs from a complete scan: ids that collide once a second env of a name appears (and lose their
    hash when it goes), display chains qualified by their install, layers of a deleted base, kernel names."""
    root_a, root_b = tmp_path / "a" / "miniforge3", tmp_path / "b" / "anaconda3"
    base_a = make_conda_prefix(root_a, conda_root=True)
    make_conda_prefix(root_b, conda_root=True)
    py_a = make_conda_prefix(root_a / "envs" / "py311", ipykernel=True)
    venvs = tmp_path / "venvs"
    make_layered_env(py_a, py_a / "proj", tool="uv")
    make_venv(venvs / "tool", tool="uv", ipykernel=True)
    settle(tmp_path)
    config = DiscoveryConfig(conda_roots=[str(root_a), str(root_b)], venv_roots=[str(venvs)])
    discovery = Discovery(config)
    listing = discovery.discover()
    table = _table(listing)
    scans: list[int] = []
    complete: list[str] = []
    real_scan = Discovery._scan

    def counted(self: Discovery) -> object:
        if self is discovery:
            scans.append(len(steps))
        return real_scan(self)

    steps = [
        (
            "a py311 in the second install (same name: ids and chains)",
            lambda: make_conda_prefix(root_b / "envs" / "py311"),
        ),
        (
            "a layer nested in it",
            lambda: make_layered_env(root_b / "envs" / "py311", root_b / "envs" / "py311" / "proj", tool="uv"),
        ),
        ("a Conda env named like a venv (its chain is qualified)", lambda: make_conda_prefix(root_b / "envs" / "tool")),
        ("that Conda env deleted", lambda: shutil.rmtree(root_b / "envs" / "tool")),
        ("a second venv named tool, nested", lambda: make_venv(py_a / "tool", tool="uv")),
        ("a venv in the venv root", lambda: make_venv(venvs / "other", tool="uv", ipykernel=True)),
        ("a layer in the venv root on the first py311", lambda: make_layered_env(py_a, venvs / "exp", tool="uv")),
        ("the second py311 deleted, with its layer", lambda: shutil.rmtree(root_b / "envs" / "py311")),
        ("a venv deleted", lambda: shutil.rmtree(venvs / "other")),
        ("the first py311 deleted: its layers dangle", lambda: shutil.rmtree(py_a)),
        ("a Conda env in the first install", lambda: make_conda_prefix(root_a / "envs" / "py312", ipykernel=True)),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Discovery, "_scan", counted)
        for label, step in steps:
            step()
            scans_before = len(scans)
            before, listing = listing, discovery.discover()
            if len(scans) > scans_before:
                complete.append(label)
            fresh = Discovery(config).discover()
            assert listing.environments == fresh.environments, label
            assert listing.skipped == fresh.skipped, label
            changes = discovery.changes(before, listing)  # the envs the update made and dropped
            assert changes is not None, label
            table = _table(listing, table, changes)
            assert table.all_specs == _table(fresh).all_specs, label
            assert [env.chain for env in listing.environments] == [env.chain for env in fresh.environments], label
            fresh_table = _table(fresh)
            assert table.aliases == fresh_table.aliases, label
            assert table.nb_conda_aliases == fresh_table.nb_conda_aliases, label
            assert table.env_kernels == fresh_table.env_kernels, label
            settle(tmp_path)
            before, listing = listing, discovery.discover()
            table = _table(listing, table, discovery.changes(before, listing))
    assert base_a.exists()
    assert complete == [], "the changes are applied in place, not by a complete scan"


def test_a_kernel_spec_managers_listing_after_changes_equals_a_fresh_managers(tmp_path: Path):
    """Broken by: a kernel table patched after a change that differs from a fresh manager's: an env's shipped
    kernels (an R kernelspec) left behind when it goes, a native kernelspec of the server's own env, names of a new
    Conda env that nb_conda_kernels would give."""
    from envtree import add_kernelspec, irkernel_spec

    root = make_conda_prefix(tmp_path / "miniforge3", conda_root=True, ipykernel=True)
    venvs = tmp_path / "venvs"
    make_venv(venvs / "plain", tool="uv", ipykernel=True)
    kernels = tmp_path / "kernels"
    add_kernelspec(kernels.parent / "native", "native-r", irkernel_spec())  # a native spec, not an env's
    kernels.mkdir()
    shutil.move(kernels.parent / "native" / "share" / "jupyter" / "kernels" / "native-r", kernels / "native-r")
    os.utime(kernels / "native-r" / "kernel.json", (YESTERDAY, YESTERDAY))  # an old spec, as a user's would be
    settle(tmp_path)

    def manager() -> LayenvKernelSpecManager:
        # the server's own env stays listed (its native kernelspec is one of the cases above)
        return looking_only_at(
            conda_roots=[str(root)],
            venv_roots=[str(venvs)],
            kernel_dirs=[str(kernels)],
            ensure_native_kernel=False,
            include_server_prefix=True,
        )

    ksm = manager()
    ksm.get_all_specs()

    def with_r(prefix: Path) -> None:
        make_conda_prefix(prefix, ipykernel=True)
        add_kernelspec(prefix, "ir", irkernel_spec())

    steps = [
        ("a Conda env shipping an R kernel", lambda: with_r(root / "envs" / "rstats")),
        ("a venv nested in it", lambda: make_venv(root / "envs" / "rstats" / "proj", tool="uv", ipykernel=True)),
        ("a plain venv deleted", lambda: shutil.rmtree(venvs / "plain")),
        ("the Conda env deleted, with its R kernel and nested venv", lambda: shutil.rmtree(root / "envs" / "rstats")),
    ]
    for label, step in steps:
        step()
        specs = ksm.get_all_specs()
        fresh = manager()
        assert specs == fresh.get_all_specs(), label
        assert ksm.listing() == fresh.listing(), label
        assert ksm.kernel_table().aliases == fresh.kernel_table().aliases, label
        settle(tmp_path)
        ksm.get_all_specs()
    assert "native-r" in ksm.get_all_specs()


def test_an_updated_listing_logs_a_new_envs_reason_once(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """Broken by: an update that logs nothing for the env it adds, or logs every env's reason again."""
    venvs = tmp_path / "venvs"
    make_venv(venvs / "kernel", tool="uv", ipykernel=True)
    make_venv(venvs / "bare", tool="uv")  # no ipykernel: a reason is logged
    settle(tmp_path)
    discovery = Discovery(DiscoveryConfig(venv_roots=[str(venvs)]))
    with caplog.at_level("INFO", logger="jupyter_layenv.discovery"):
        discovery.discover()
        make_venv(venvs / "bare2", tool="uv")
        discovery.discover()
        settle(tmp_path)
        discovery.discover()
    logged = [record.getMessage() for record in caplog.records if "no ipykernel" in record.getMessage()]
    assert len(logged) == 2, logged
    assert any(str(venvs / "bare2") in message for message in logged)


@pytest.mark.parametrize("own_name", ["a", "z"])
def test_venvs_sharing_a_home_get_their_own_base_when_one_of_them_is_that_home(tmp_path: Path, own_name: str):
    """Broken by: sharing one base answer between every venv with the same ``home`` (worked out once per build)
    without noticing that the answer names one of them: a venv whose ``home`` is its own bin directory is no layer
    on itself, while its sibling made from it is a layer on it, whichever of the two is built first."""
    root = tmp_path / "venvs"
    own, layer = make_venv(root / own_name, tool="uv"), make_venv(root / "m", tool="uv")
    for env in (own, layer):
        cfg = env / "pyvenv.cfg"
        lines = [f"home = {own / 'bin'}" if line.startswith("home") else line for line in cfg.read_text().splitlines()]
        cfg.write_text("\n".join(lines) + "\n")
    found = {env.path: env for env in Discovery(DiscoveryConfig(venv_roots=[str(root)])).discover().environments}
    assert (found[str(own)].kind, found[str(own)].base) == ("venv", None)
    assert (found[str(layer)].kind, found[str(layer)].base) == ("layered", str(own))
