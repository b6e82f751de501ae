"""A real local Conda channel for the tests, served as ``file://`` (no Conda channel is reachable here).

What is synthetic: the channel's packages. They are made here, not downloaded from conda-forge:

- ``python``: the test run's own CPython (``sys.base_prefix``), copied by :func:`envtree.make_conda_prefix`
  (interpreter patchelf'd to load the ``libpython`` beside it), minus what no test runs (the stdlib's tests,
  tkinter, the static library); a real, runnable interpreter from whatever place it is installed into.
- one package per distribution of ``ipykernel``'s dependency closure, carrying the very files pip unpacked
  from their wheels into the test environment (so a kernel of the new env executes code);
- ``layenv-conda-marker`` 1.0 and 2.0, a one-module package telling which env an import came from;
- ``layenv-dangling-python`` 1.0: only a ``bin/python`` link to nothing, as a botched package leaves it (an env of it
  alone, without ipykernel, is one discovery skips: a broken interpreter).

Each package is a ``.tar.bz2`` with ``info/index.json``, ``info/paths.json`` (sha256 and size of every file)
and ``info/files``, as conda-build writes them, and the channel is indexed by py-rattler's own indexer.

What is real: everything that reads the channel (py-rattler's solver and installer, in jupyter_layenv) and the
interpreter it installs. Building takes a few seconds (bz2); the result is cached between test sessions in the
temp dir, under a key of this file's text and the Python it packages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from envtree import PY_XY, PY_XYZ, _conda_subdir, _install, make_conda_prefix, site_packages
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SUBDIR = _conda_subdir()
MARKER = "layenv-conda-marker"
MARKER_MODULE = "layenv_conda_marker"
DANGLING_PYTHON = "layenv-dangling-python"
# Not needed by anything a test runs, and the bulk of the bytes bz2 would have to squeeze.
_PYTHON_SKIP = ("config-", "ensurepip", "lib2to3", "pydoc_data", "__pycache__")
_TIMESTAMP = 1735689600000


def channel_url(channel: Path) -> str:
    return Path(channel).resolve().as_uri()


def cached_channel() -> Path:
    """The channel, built once per machine for this Python and this file's text (tests share it read-only)."""
    key = hashlib.sha256(
        Path(__file__).read_bytes() + Path(__file__).with_name("envtree.py").read_bytes() + sys.prefix.encode()
    ).hexdigest()[:12]
    channel = Path(tempfile.gettempdir()) / f"jupyter_layenv-tests-conda-channel-{PY_XYZ}-{key}"
    if (channel / SUBDIR / "repodata.json").is_file():
        return channel
    staging = Path(tempfile.mkdtemp(prefix="conda-channel-", dir=channel.parent))
    try:
        build_channel(staging / "channel", staging / "work")
        try:
            os.rename(staging / "channel", channel)
        except OSError:
            if not (channel / SUBDIR / "repodata.json").is_file():  # not another session that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return channel


def build_channel(channel: Path, work: Path) -> Path:
    """Build every package into ``channel/<subdir>/`` and index the channel with py-rattler."""
    import rattler

    (channel / SUBDIR).mkdir(parents=True)
    (channel / "noarch").mkdir()
    jobs: list[tuple[dict, Path, list[str]]] = []

    prefix = make_conda_prefix(work / "python")
    shutil.rmtree(prefix / "conda-meta")
    files = [f for f in _files(prefix) if not any(part.startswith(_PYTHON_SKIP) for part in Path(f).parts)]
    jobs.append((_index("python", PY_XYZ, "h0_0_cpython", [], "PSF-2.0"), prefix, files))

    python_dep = f"python {PY_XY}.*"
    kernel = work / "ipykernel"
    for dist, dist_files in _install(site_packages(kernel), ["ipykernel"], installer="conda"):
        name = canonicalize_name(dist.metadata["Name"])
        depends = sorted(
            {python_dep}
            | {canonicalize_name(Requirement(r).name) for r in dist.requires or [] if _needed(Requirement(r))}
        )
        jobs.append((_index(name, dist.version, f"py{PY_XY.replace('.', '')}_0", depends), kernel, dist_files))

    for version in ("1.0", "2.0"):
        marker = work / f"marker-{version}"
        module = site_packages(marker) / f"{MARKER_MODULE}.py"
        module.parent.mkdir(parents=True)
        module.write_text(f'WHERE = "conda {version}"\n', encoding="utf-8")
        jobs.append((_index(MARKER, version, "0", [python_dep]), marker, [str(module.relative_to(marker))]))

    dangling = work / "dangling-python"
    (dangling / "bin").mkdir(parents=True)
    (dangling / "bin" / "python").symlink_to("python0.0")
    jobs.append((_index(DANGLING_PYTHON, "1.0", "0", []), dangling, ["bin/python"]))

    with ThreadPoolExecutor(max_workers=2) as pool:  # bz2 releases the GIL
        list(pool.map(lambda job: _write_package(channel / SUBDIR, *job), jobs))
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
    return channel


def _needed(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate({"extra": ""})


def _files(prefix: Path) -> list[str]:
    out = []
    for directory, dirs, names in os.walk(prefix):
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(directory, d)))]:
            out.append(os.path.relpath(os.path.join(directory, name), prefix))
    return sorted(out)


def _index(name: str, version: str, build: str, depends: list[str], license: str = "BSD-3-Clause") -> dict:
    return {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": depends,
        "license": license,
        "subdir": SUBDIR,
        "arch": SUBDIR.split("-", 1)[1],
        "platform": SUBDIR.split("-", 1)[0],
        "timestamp": _TIMESTAMP,
    }


def _write_package(subdir: Path, index: dict, prefix: Path, files: list[str]) -> Path:
    """A ``<name>-<version>-<build>.tar.bz2`` with conda-build's ``info/`` and the files."""
    entries = []
    for rel in files:
        path = prefix / rel
        if path.is_symlink():
            entries.append({"_path": rel, "path_type": "softlink"})
        else:
            data = path.read_bytes()
            entries.append({"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                            "size_in_bytes": len(data)})  # fmt: skip
    info = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True),
        "info/paths.json": json.dumps({"paths": entries, "paths_version": 1}, indent=2),
        "info/files": "".join(f"{rel}\n" for rel in files),
    }
    target = subdir / f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    with tarfile.open(target, "w:bz2", compresslevel=1) as tar:
        for arcname, text in info.items():
            data = text.encode()
            member = tarfile.TarInfo(arcname)
            member.size, member.mtime, member.mode = len(data), _TIMESTAMP // 1000, 0o644
            tar.addfile(member, _bytes(data))
        for rel in files:
            tar.add(prefix / rel, arcname=rel, recursive=False)
    return target


def _bytes(data: bytes):
    import io

    return io.BytesIO(data)
