"""size_bytes: the bytes an env alone holds (a hard-linked file counted once, and only where all its links are),
checked against GNU du on real layers hard-linked from uv's cache and a Conda-style base."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from envtree import make_conda_prefix, make_layered_env, site_packages, uv_install
from layenv_api import fetch_json
from wheelhouse import write_wheel

from jupyter_layenv.usage import sizing

BIG = "x = 1\n" * 40_000  # 240 kB: a package file that counts


@pytest.fixture(scope="module")
def size_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("size-home")
    wheels = home / "wheels"
    write_wheel(wheels, "bigpkg", "1.0", {"bigpkg/__init__.py": BIG})
    root = make_conda_prefix(home / "miniconda3", conda_root=True)
    base = make_conda_prefix(root / "envs" / "sci", packages=["six"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UV_CACHE_DIR", str(home / "uv-cache"))
        for name in ("one", "two"):
            layer = make_layered_env(base, home / ".virtualenvs" / name, tool="uv")
            # what the create job runs: uv links the files of its cache into the layer
            uv_install(layer, wheels, "bigpkg", hardlink=True)
    return home


def du(*paths: Path) -> list[int]:
    """GNU du's figure for each path, in bytes of allocated blocks; a hard-linked file is counted under the first
    path it is met in (``-l`` would count it under each)."""
    out = subprocess.run(["du", "-s", "-B1", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return [int(line.split("\t")[0]) for line in out.splitlines()]


def test_own_and_shared_bytes_match_du(size_home: Path):
    sci = size_home / "miniconda3" / "envs" / "sci"
    one, two = size_home / ".virtualenvs" / "one", size_home / ".virtualenvs" / "two"
    big = site_packages(one) / "bigpkg" / "__init__.py"
    assert os.stat(big).st_nlink >= 3  # the cache's copy and both layers': one inode
    # every place the envs' files may be linked from comes first, so du charges each env only what is its alone
    sources = [Path(sys.base_prefix), Path(sys.prefix), size_home / "uv-cache"]
    charged = du(*sources, sci, one, two)[len(sources) :]
    measures = [sizing.measure(str(env)) for env in (sci, one, two)]
    assert [m.size_bytes for m in measures] == charged
    # what it holds in all: du of the env alone counts each inode once
    for env, m in zip((sci, one, two), measures, strict=True):
        assert m.size_bytes + m.shared_bytes == du(env)[0]
    assert measures[1].shared_bytes >= os.stat(big).st_blocks * 512  # the cached package is not the layer's own
    assert measures[1].size_bytes < os.stat(big).st_blocks * 512 * 2  # nor counted once per link


@pytest.fixture
def jp_home_dir(size_home: Path) -> Path:
    return size_home


@pytest.fixture
def jp_server_config() -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {"size_refresh_seconds": 0},
    }


async def sized(jp_fetch, path: Path, differs_from: int | None = None, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        _, listing = await fetch_json(jp_fetch, "environments")
        env = next(env for env in listing["environments"] if env["path"] == str(path))
        if env["size_bytes"] is not None and env["size_bytes"] != differs_from:
            return env
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} was not sized: {env}")


async def test_listing_never_waits_for_sizes_and_sees_changes(jp_fetch, size_home: Path, tmp_path: Path):
    layer = size_home / ".virtualenvs" / "one"
    _, first = await fetch_json(jp_fetch, "environments")
    assert {env["size_bytes"] for env in first["environments"]} == {None}  # not measured yet: says so, no wait
    env = await sized(jp_fetch, layer)
    assert env["size_bytes"] == sizing.measure(str(layer)).size_bytes
    _, one = await fetch_json(jp_fetch, "environments", env["id"])
    assert one["size_bytes"] == env["size_bytes"]

    added = layer / "notes.txt"
    added.write_text("y" * 100_000)
    try:
        grown = await sized(jp_fetch, layer, differs_from=env["size_bytes"])  # the directory's mtime changed
        assert grown["size_bytes"] == env["size_bytes"] + os.stat(added).st_blocks * 512
    finally:
        added.unlink()
