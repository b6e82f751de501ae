"""The indexes only updates use (which memo entry and which build record depend on a path) are made at their first
use, not by the cold listing that computes the entries: made then, they are those a listing that kept them up to date
would have."""

from __future__ import annotations

import shutil
from pathlib import Path

from envtree import make_conda_prefix, make_layered_env, make_venv, settle

from jupyter_layenv.discovery import Discovery, DiscoveryConfig


def _config(envs: Path, root: Path) -> DiscoveryConfig:
    return DiscoveryConfig(envs_dirs=[str(envs)], venv_roots=[str(root)])


def test_a_cold_listing_leaves_the_update_indexes_unmade_and_updates_make_them_whole(tmp_path: Path):
    """Broken by: a cold listing that indexes every entry and record as it makes them (0.8 ms at 500 envs), or an
    index made after an entry changed (it would miss the paths the entry no longer depends on)."""
    envs = tmp_path / "envs"
    base = make_conda_prefix(envs / "base311")
    make_layered_env(base, base / "layer", tool="uv")
    root = tmp_path / "venvs"
    make_venv(root / "plain", tool="uv")
    make_venv(root / "gone", tool="uv")
    settle(tmp_path)
    discovery = Discovery(_config(envs, root))
    discovery.discover()
    memos = (discovery._prefixes, discovery._children)
    built = discovery._built
    assert built is not None
    assert [memo._dependents for memo in memos] == [None, None] and built._dependents is None

    make_venv(root / "plain2", tool="uv")
    shutil.rmtree(root / "gone")
    listing = discovery.discover()
    fresh = Discovery(_config(envs, root)).discover()
    assert [env.path for env in listing.environments] == [env.path for env in fresh.environments]
    assert str(root / "plain2") in {env.path for env in listing.environments}

    built = discovery._built
    assert built is not None
    for index in (*memos, built):  # kept up to date since the update made it == made from scratch now
        kept = index.dependents
        index._dependents = None
        assert index.dependents == kept
    assert str(root / "gone") not in discovery._signature  # its paths lost their last dependent, and left


def test_change_notifications_make_the_indexes_in_the_background_after_a_cold_listing(tmp_path: Path):
    """Broken by: leaving the indexes to the first update also where a background thread runs after the listing
    anyway (a server's first update after its first listing would make them: +0.5 ms at 500 envs)."""
    root = tmp_path / "venvs"
    make_venv(root / "plain", tool="uv")
    settle(tmp_path)
    discovery = Discovery(DiscoveryConfig(venv_roots=[str(root)], notifications=True))
    try:
        discovery.discover(promote=False)
        assert discovery._prefixes._dependents is None  # not by the listing itself
        discovery.promote()
        assert discovery.watching()
        assert discovery._prefixes._dependents is not None and discovery._children._dependents is not None
        assert discovery._built is not None and discovery._built._dependents is not None
    finally:
        discovery.close()
