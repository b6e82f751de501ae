"""A cold listing lists site-packages and conda-meta without a ``stat`` of each: the next listing's ``stat`` tells
whether they changed since the cold listing started (their mtime and ctime against its start), so a change made in
between, in the racy window or long after, with its mtime moved back or not, is seen.

Real prefixes (a copied CPython as a Conda env, uv venvs, a layer on the Conda env); ipykernel "installed" as the
files of a distribution of that name (module and dist-info), which is all a listing looks at.
"""

from __future__ import annotations

import os
import shutil
import time
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
from oscalls import LISTINGS, STATS, record_os_calls

from jupyter_layenv.discovery import RACY_WINDOW_NS, Discovery, DiscoveryConfig


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A Conda env with a layer that inherits its packages, and a plain venv: no ipykernel anywhere, all settled."""
    envs = tmp_path / "envs"
    conda_env = make_conda_prefix(envs / "base311")
    layer = make_layered_env(conda_env, conda_env / "layer", tool="uv")
    plain = make_venv(tmp_path / "venvs" / "plain", tool="uv")
    settle(tmp_path)
    return {
        "root": tmp_path,
        "envs": envs,
        "venvs": tmp_path / "venvs",
        "conda": conda_env,
        "layer": layer,
        "plain": plain,
    }


def _discovery(tree: dict[str, Path]) -> Discovery:
    return Discovery(DiscoveryConfig(envs_dirs=[str(tree["envs"])], venv_roots=[str(tree["venvs"])]))


def _with_ipykernel(discovery: Discovery) -> set[str]:
    return {env.path for env in discovery.discover().environments if env.has_ipykernel}


def _install_ipykernel(prefix: Path, form: str = "module") -> None:
    """``module``: ``ipykernel.py`` and its dist-info (a listing of site-packages tells); ``package``: an
    ``ipykernel/`` package (a ``stat`` of it tells, without a listing)."""
    site = site_packages(prefix)
    add_pure_python_package(site, "ipykernel", "6.29.5")
    if form == "package":
        os.remove(site / "ipykernel.py")
        (site / "ipykernel").mkdir()
        (site / "ipykernel" / "__init__.py").write_text("")


def _remove_ipykernel(prefix: Path) -> None:
    site = site_packages(prefix)
    if (site / "ipykernel").is_dir():
        shutil.rmtree(site / "ipykernel")
    else:
        os.remove(site / "ipykernel.py")
    shutil.rmtree(site / "ipykernel-6.29.5.dist-info")


def test_a_cold_listing_does_not_stat_what_it_lists(tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """Broken by: a ``stat`` of each site-packages and conda-meta after listing it, only to keep its mtime for the
    next listing (which makes that ``stat`` itself)."""
    stats = record_os_calls(monkeypatch, STATS)  # either would be a stat of what was just listed
    listed = {env.path for env in _discovery(tree).discover().environments}
    monkeypatch.undo()
    assert {str(tree["conda"]), str(tree["layer"]), str(tree["plain"])} <= listed
    inside = str(tree["root"])
    read_twice = [
        path for path in stats.paths() if path.startswith(inside) and path.endswith(("site-packages", "conda-meta"))
    ]
    assert not read_twice


@pytest.mark.parametrize("form", ["module", "package"])
@pytest.mark.parametrize("where", ["plain", "conda", "base of the layer", "layer"])
@pytest.mark.parametrize("when", ["at once", "after the racy window", "mtime moved back"])
def test_ipykernel_installed_after_a_cold_listing_is_seen_by_the_next(
    tree: dict[str, Path], where: str, when: str, form: str
):
    """Broken by: trusting a directory listed by the cold listing because its mtime is old (an archive or
    ``rsync -a`` restores one), or because the change came in the racy window of the cold listing; for the layer
    (whose base has no ipykernel), keeping the answer of a build that looked for its dist-info when its
    site-packages changed (its facts stay equal: no package either way)."""
    discovery = _discovery(tree)
    assert not _with_ipykernel(discovery)
    prefix = tree["conda"] if where == "base of the layer" else tree[where]
    if when == "after the racy window":
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)
    _install_ipykernel(prefix, form)
    if when == "mtime moved back":
        settle(site_packages(prefix), when=YESTERDAY - 3600)  # older than the cold listing, and not the mtime it saw
    expected = {str(prefix)} | ({str(tree["layer"])} if prefix == tree["conda"] else set())
    assert _with_ipykernel(discovery) == expected
    assert _with_ipykernel(discovery) == expected  # and the listing after it (its baseline) agrees
    _remove_ipykernel(prefix)
    if when == "mtime moved back":
        settle(site_packages(prefix), when=YESTERDAY - 7200)
    assert not _with_ipykernel(discovery)


@pytest.mark.parametrize("where", ["plain", "conda"])
@pytest.mark.parametrize("when", ["at once", "mtime moved back"])
def test_ipykernel_removed_after_a_cold_listing_that_found_its_package_is_gone_from_the_next(
    tree: dict[str, Path], where: str, when: str
):
    """Broken by: trusting site-packages because the cold listing saw the ``ipykernel`` package there with a
    ``stat`` (no listing of site-packages, and no ``stat`` of it), when a removal since moved its mtime."""
    prefix = tree[where]
    _install_ipykernel(prefix, "package")
    settle(tree["root"])
    if where == "plain":  # just written, its pyvenv.cfg would have the venv read again whatever site-packages says
        os.utime(prefix / "pyvenv.cfg", (YESTERDAY, YESTERDAY))
    discovery = _discovery(tree)
    expected = {str(prefix)} | ({str(tree["layer"])} if where == "conda" else set())
    assert _with_ipykernel(discovery) == expected
    _remove_ipykernel(prefix)
    if when == "mtime moved back":
        settle(site_packages(prefix), when=YESTERDAY - 3600)
    assert not _with_ipykernel(discovery)
    assert not _with_ipykernel(discovery)


def test_a_settled_tree_stays_settled_after_the_first_listing(tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """Broken by: a baseline that never settles (each listing reads the envs again); the lazily taken baseline
    must cost the listings after the cold one nothing more than a ``stat`` per dependency."""
    discovery = _discovery(tree)
    first = discovery.discover()
    listed = record_os_calls(monkeypatch, LISTINGS)
    assert discovery.discover() is first
    assert discovery.discover() is first
    assert not listed.paths()


def test_an_env_deleted_after_a_cold_listing_is_gone_from_the_next(tree: dict[str, Path]):
    """Broken by: a lazily taken baseline read as "unchanged" once its directory is gone."""
    discovery = _discovery(tree)
    assert str(tree["layer"]) in {env.path for env in discovery.discover().environments}
    shutil.rmtree(tree["layer"])
    settle(tree["conda"])  # the parent's mtime as it was: only the env's own directories tell
    assert str(tree["layer"]) not in {env.path for env in discovery.discover().environments}
