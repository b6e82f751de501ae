"""A cleanup prunes nothing another process is using: uv's cache while uv holds its lock, a Conda package while
rattler holds the package's lock (both real ``flock`` locks, taken here as those tools take them)."""

from __future__ import annotations

import collections
import fcntl
import os
from pathlib import Path

from jupyter_layenv.usage.clean import prune_conda_cache, prune_uv_cache


def hold(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_uv_cache_in_use_is_left_alone(tmp_path: Path):
    cache = tmp_path / "uv"
    archive = cache / "archive-v0" / "abc123"
    archive.mkdir(parents=True)
    (archive / "mod.py").write_text("x = 1\n")
    held = hold(cache / ".lock")
    try:
        result = prune_uv_cache(str(cache), collections.Counter(), dry_run=False)
        assert result.skipped == "uv is using its cache: run the cleanup again when installs are done"
        assert result.entries == [] and archive.is_dir()
    finally:
        os.close(held)
    result = prune_uv_cache(str(cache), collections.Counter(), dry_run=False)
    assert result.skipped is None and result.entries == [str(archive)] and not archive.exists()


def test_uv_cache_whose_lock_cannot_be_made_is_left_alone(tmp_path: Path):
    cache = tmp_path / "uv"
    archive = cache / "archive-v0" / "abc123"
    archive.mkdir(parents=True)
    (archive / "mod.py").write_text("x = 1\n")
    (cache / ".lock").symlink_to(tmp_path / "elsewhere")  # never followed
    result = prune_uv_cache(str(cache), collections.Counter(), dry_run=False)
    assert result.skipped is not None and result.skipped.startswith(f"cannot lock {cache}: ")
    assert archive.is_dir() and not (tmp_path / "elsewhere").exists()


def test_conda_package_in_use_is_left_alone(tmp_path: Path):
    pkgs = tmp_path / "pkgs"
    package = pkgs / "tool-1.0-0"
    (package / "info").mkdir(parents=True)
    (package / "info" / "index.json").write_text("{}")
    held = hold(pkgs / "tool-1.0-0.lock")
    try:
        result = prune_conda_cache(str(pkgs), collections.Counter(), dry_run=False)
        assert result.entries == [] and package.is_dir()
    finally:
        os.close(held)
    result = prune_conda_cache(str(pkgs), collections.Counter(), dry_run=False)
    assert result.entries == [str(package)] and not package.exists() and not (pkgs / "tool-1.0-0.lock").exists()
