"""Builders of real environments on disk, for the tests (plain functions, no pytest).

Conda channels are unreachable in CI, so a "Conda" prefix here is the real CPython of the test run
(``sys.base_prefix``) copied into a new directory, with the files Conda itself would have written
(``conda-meta/``). The interpreter is a real copy that runs from its new place; virtualenv, uv and venv
build real environments on it; ipykernel gets into a prefix by copying the files of the installed
distributions of the running interpreter, exactly the files pip unpacked from their wheels.

Speed comes from hard links: the stdlib and the site-packages files are linked, not copied. The one
rule this brings: never write *into* an existing file of a built prefix (open it for writing, patch it):
through a hard link that would change the original. Replace files instead (write a new file, rename it).
The interpreter binary is the exception made safe: it is a real copy, because patchelf rewrites it.

Linux only for the Conda-style copies (patchelf); the rest is plain POSIX.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from jupyter_layenv.discovery import fs_now_ns

PY_XY = f"{sys.version_info[0]}.{sys.version_info[1]}"
PY_XYZ = f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
PYTHON_NAME = f"python{PY_XY}"
LIB_PYTHON = f"lib/python{PY_XY}"
CONDA_VERSION = "24.11.3"
CONDA_FORGE = "https://conda.anaconda.org/conda-forge"
HISTORY_DATE = "2025-01-01 00:00:00"
YESTERDAY = time.time() - 86_400  # an mtime far outside discovery's racy window (see settle)

# Top-level stdlib entries not needed to run anything the tests run (speed). The stdlib's __pycache__ IS
# linked, but only the plain ``*.cpython-3XY.pyc`` (no opt-1/opt-2): a hard link keeps the source's mtime and
# size, so they stay valid, and each start of a copied interpreter then skips recompiling the stdlib
# (``import ipykernel`` 0.34 s instead of 0.91 s, measured), which matters with many kernels started.
_STDLIB_SKIP = frozenset({"site-packages", "test", "idlelib", "tkinter", "turtledemo"})
_PYC_SUFFIX = f".{sys.implementation.cache_tag}.pyc"

# virtualenv caches interpreter probes here instead of in the user's ~/.local/share (the fake HOME of a test
# must not fill up, and the real one must not be written).
_VIRTUALENV_APP_DATA = Path(tempfile.gettempdir()) / "jupyter_layenv-tests-virtualenv-app-data"

_FAKE_CONDA = """#!/bin/sh
# Stand-in for the conda executable, which cannot exist here: the test machine has no Conda channel to
# install it from. It marks this prefix as a Conda install root, as the real file does. Discovery reads
# files only and must never run it: if anything does, it fails loudly.
echo "jupyter_layenv test fixture: this fake conda ($0) must never be executed" >&2
exit 1
"""


# --------------------------------------------------------------------------------------------- small helpers


def site_packages(prefix: Path) -> Path:
    """The site-packages of a POSIX prefix or venv built here (same layout for both)."""
    return Path(prefix) / LIB_PYTHON / "site-packages"


def layer_dists(env: Path) -> set[str]:
    """The (canonical) names of the distributions installed in an env's own site-packages."""
    entries = site_packages(env).iterdir()
    return {canonicalize_name(entry.name.split("-")[0]) for entry in entries if entry.suffix == ".dist-info"}


def isolate_home(monkeypatch, home: Path) -> None:
    """HOME at ``home`` and no activated shell (no variable a locator reads), so only default locations count
    (``monkeypatch``: pytest's, which undoes this after the test)."""
    monkeypatch.setenv("HOME", str(home))
    for var in (
        *("CONDA_EXE", "CONDA_PREFIX", "MAMBA_ROOT_PREFIX", "CONDA_ENVS_PATH", "CONDA_ENVS_DIRS", "WORKON_HOME"),
        *("CONDARC", "CONDA_ROOT", "XDG_CONFIG_HOME", "PYENV_ROOT"),
    ):
        monkeypatch.delenv(var, raising=False)


def base_python() -> Path:
    """The real interpreter binary under ``sys.base_prefix`` (the pyenv/system CPython, not a venv's link)."""
    candidate = Path(sys.base_prefix) / "bin" / PYTHON_NAME
    if candidate.is_file():
        return candidate
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def read_pyvenv_cfg(env: Path) -> dict[str, str]:
    """``pyvenv.cfg`` read as the interpreter's ``site.py`` does: ``key = value`` lines, keys lowercased."""
    values: dict[str, str] = {}
    text = (Path(env) / "pyvenv.cfg").read_text(encoding="utf-8")
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard link (fast, no space); copy when links are impossible (another filesystem, no permission)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link_tree(src: Path, dst: Path, skip_top: frozenset[str] = frozenset(), pycache: bool = False) -> None:
    """Mirror a directory: dirs made, files hard linked, symlinks recreated.

    ``__pycache__`` is left out, or with ``pycache`` only its non-optimized pyc files are linked.
    """
    in_pycache = src.name == "__pycache__"
    dst.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as entries:
        for entry in entries:
            if entry.name in skip_top or (entry.name == "__pycache__" and not pycache):
                continue
            if in_pycache and not entry.name.endswith(_PYC_SUFFIX):
                continue
            target = dst / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                _link_tree(Path(entry.path), target, pycache=pycache)
            else:
                link_or_copy(Path(entry.path), target)


def _write(path: Path, text: str, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mode is not None:
        path.chmod(mode)
    return path


def _find_tool(name: str) -> str:
    """A console tool of the dev environment: next to ``sys.executable`` first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found next to {sys.executable} nor on PATH (install the test extras)")
    return found


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, raising with its output when it fails (a fixture that half-built must say why)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _tool_env() -> dict[str, str]:
    """The environment for virtualenv/uv/venv: none of the caller's Python or venv settings leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUALENV_", "UV_", "PYTHON", "CONDA_", "PIP_")) and k != "VIRTUAL_ENV"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _conda_subdir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64", "ppc64le": "ppc64le"}
    system = {"linux": "linux", "darwin": "osx"}.get(sys.platform, sys.platform)
    return f"{system}-{arch.get(machine, machine)}"


# ------------------------------------------------------------------------------ installing distributions


def _dependency_closure(names: Iterable[str]) -> list[metadata.Distribution]:
    """The named distributions and everything they need at run time (markers evaluated, extras ignored)."""
    marker_env = {**default_environment(), "extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"{name} is needed but not installed in {sys.prefix}: install it in the test environment"
            ) from None
        seen[name] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate(marker_env):
                todo.append(canonicalize_name(req.name))
    return list(seen.values())


def _install_distribution(
    dist: metadata.Distribution, target_site: Path, data_files: bool, installer: str | None
) -> list[str] | None:
    """Copy one distribution's RECORD files into ``target_site``; returns the prefix-relative files.

    Plain strings and os.path, not pathlib: ipykernel's closure is ~8000 files and pathlib tripled the time.
    """
    record_text = dist.read_text("RECORD")
    if record_text is None:
        raise RuntimeError(f"{dist.metadata['Name']} has no RECORD: cannot tell which files are its own")
    rows = [r for r in csv.reader(io.StringIO(record_text)) if r]
    dist_info = next((r[0].split("/", 1)[0] for r in rows if r[0].split("/", 1)[0].endswith(".dist-info")), None)
    if dist_info is None:
        raise RuntimeError(f"{dist.metadata['Name']} has no .dist-info in its RECORD: cannot copy it")
    if (target_site / dist_info).exists():
        return None  # already there (a dependency shared by two calls)
    source_site = os.path.realpath(str(dist.locate_file("")))
    source_prefix = os.path.dirname(os.path.dirname(os.path.dirname(source_site)))  # <p>/lib/pythonX.Y/site-packages
    source_share = os.path.join(source_prefix, "share") + os.sep
    target_prefix = str(target_site.parents[2])
    site_str = str(target_site)
    made: set[str] = set()
    kept: list[list[str]] = []
    prefix_files: list[str] = []
    for row in rows:
        src = os.path.normpath(os.path.join(source_site, row[0]))
        if src.startswith(source_site + os.sep):
            dst = site_str + src[len(source_site) :]
        elif data_files and src.startswith(source_share):
            dst = target_prefix + src[len(source_prefix) :]
        else:
            continue  # console scripts in bin/ (their shebang names the source python), headers...
        if not os.path.isfile(src):
            continue  # a RECORD entry for a file that is not there (pyc lists, removed files)
        parent = os.path.dirname(dst)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if row[0].startswith(dist_info + "/"):
            shutil.copy2(src, dst)  # metadata is copied: a test may edit it without touching the dev venv
        else:
            link_or_copy(src, dst)
        kept.append(row)
        prefix_files.append(dst[len(target_prefix) + 1 :])
    # RECORD lists only what is really here (pip uninstall / export tools read it); INSTALLER says who.
    record = target_site / dist_info / "RECORD"
    record.unlink(missing_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(kept)
    record.write_text(buf.getvalue(), encoding="utf-8")
    if installer:
        installer_file = target_site / dist_info / "INSTALLER"
        installer_file.unlink(missing_ok=True)
        installer_file.write_text(installer + "\n", encoding="utf-8")
    return prefix_files


def _install(
    site: Path, names: Iterable[str], data_files: bool = True, installer: str | None = None
) -> list[tuple[metadata.Distribution, list[str]]]:
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    done = []
    for dist in _dependency_closure(names):
        files = _install_distribution(dist, site, data_files, installer)
        if files is not None:
            done.append((dist, files))
    return done


def install_distributions(site_packages: Path, names: Iterable[str], *, data_files: bool = True) -> None:
    """Install distributions and their runtime dependency closure into ``site_packages`` without network.

    Copies (hard links) the files each installed distribution of the running interpreter lists in its
    RECORD: the very files pip unpacked from the wheel. Files outside site-packages are skipped (console
    scripts name the source interpreter in their shebang), except, with ``data_files``, the wheel's data
    under ``<prefix>/share`` (ipykernel's ``share/jupyter/kernels/python3``), which pip unpacks too.
    Markers are evaluated for the running interpreter, so target an interpreter of the same version.
    """
    _install(Path(site_packages), names, data_files)


def add_pure_python_package(site: Path, name: str, version: str = "1.0", source: str = "") -> Path:
    """A one-module distribution (module + dist-info), e.g. a marker telling which env an import came from."""
    site = Path(site)
    module = _write(site / f"{name}.py", source)
    dist_info = site / f"{name}-{version}.dist-info"
    metadata_text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    _write(dist_info / "METADATA", metadata_text)
    _write(dist_info / "INSTALLER", "pip\n")
    _write(
        dist_info / "RECORD",
        f"{name}.py,,\n{name}-{version}.dist-info/METADATA,,\n{name}-{version}.dist-info/INSTALLER,,\n"
        f"{name}-{version}.dist-info/RECORD,,\n",
    )
    return module


# ------------------------------------------------------------------------------------------ Conda prefixes


def _conda_record(
    name: str, version: str, build: str, subdir: str, files: list[str], depends: list[str], spec: str
) -> dict[str, object]:
    """A ``conda-meta/<name>-<version>-<build>.json`` record with the fields conda writes."""
    fn = f"{name}-{version}-{build}.conda"
    return {
        "build": build,
        "build_number": int(build.rsplit("_", 1)[-1]) if build.rsplit("_", 1)[-1].isdigit() else 0,
        "channel": f"{CONDA_FORGE}/{subdir}",
        "constrains": [],
        "depends": depends,
        "files": files,
        "fn": fn,
        "license": "BSD-3-Clause",
        "md5": "0" * 32,
        "name": name,
        "requested_spec": spec,
        "sha256": "0" * 64,
        "size": 0,
        "subdir": subdir,
        "timestamp": 1735689600000,
        "url": f"{CONDA_FORGE}/{subdir}/{fn}",
        "version": version,
    }


def _write_record(prefix: Path, record: dict[str, object]) -> Path:
    path = prefix / "conda-meta" / f"{record['name']}-{record['version']}-{record['build']}.json"
    return _write(path, json.dumps(record, indent=2, sort_keys=True))


def _patch_rpath(binary: Path) -> None:
    """Make the copied interpreter load the libpython next to it, not the original's (absolute RUNPATH)."""
    if not sys.platform.startswith("linux"):
        return
    _run([_find_tool("patchelf"), "--set-rpath", "$ORIGIN/../lib", str(binary)])


def make_conda_prefix(
    dest: Path, *, conda_root: bool = False, ipykernel: bool = False, packages: Iterable[str] = ()
) -> Path:
    """A Conda-style prefix whose interpreter is a real, runnable copy of the test run's CPython.

    Channels are unreachable, so instead of ``conda create`` the base CPython is copied: its binary really
    copied (patchelf rewrites it; a hard link would corrupt the original), stdlib and libpython hard linked,
    an empty site-packages (the base install's own packages must not leak in), then ``conda-meta/`` as
    conda writes it. ``conda_root`` adds what marks an install root (``envs/``, ``condabin/``, ``bin/conda``).
    """
    dest = Path(dest)
    src = Path(sys.base_prefix)
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    exe = dest / "bin" / PYTHON_NAME
    shutil.copy2(base_python(), exe)
    for alias in ("python", f"python{sys.version_info[0]}"):
        (dest / "bin" / alias).symlink_to(PYTHON_NAME)
    (dest / "lib").mkdir(exist_ok=True)
    for lib in (src / "lib").glob("libpython*"):
        if lib.is_symlink():
            (dest / "lib" / lib.name).symlink_to(os.readlink(lib))
        elif lib.is_file():
            link_or_copy(lib, dest / "lib" / lib.name)
    _link_tree(src / LIB_PYTHON, dest / LIB_PYTHON, _STDLIB_SKIP, pycache=True)
    site_packages(dest).mkdir(parents=True, exist_ok=True)
    if (src / "include").is_dir():
        _link_tree(src / "include", dest / "include")
    _patch_rpath(exe)

    subdir = _conda_subdir()
    python_build = "h0_0_cpython"
    python_files = [
        f"bin/{PYTHON_NAME}",
        "bin/python",
        "bin/python3",
        *(f"lib/{p.name}" for p in sorted((dest / "lib").glob("libpython*"))),
    ]
    records = [
        _conda_record(
            "python",
            PY_XYZ,
            python_build,
            subdir,
            python_files,
            ["bzip2 >=1.0.8,<2.0a0", "libffi >=3.4,<4.0a0", "openssl >=3.2,<4.0a0", "tzdata", "xz >=5.2.6,<6.0a0"],
            f"python={PY_XY}",
        )
    ]
    specs = [f"python={PY_XY}"]
    if conda_root:
        for d in ("envs", "condabin", "pkgs"):
            (dest / d).mkdir(exist_ok=True)
        _write(dest / "bin" / "conda", _FAKE_CONDA, 0o755)
        _write(dest / "condabin" / "conda", _FAKE_CONDA, 0o755)
        records.append(
            _conda_record(
                "conda",
                CONDA_VERSION,
                f"py{PY_XY.replace('.', '')}_0",
                subdir,
                ["bin/conda", "condabin/conda"],
                [f"python >={PY_XY},<{PY_XY}.0a0"],
                "conda",
            )
        )
        specs.append("conda")

    wanted = [*(["ipykernel"] if ipykernel else []), *packages]
    specs.extend(wanted)
    for dist, files in _install(site_packages(dest), wanted, installer="conda"):
        binary = any(f.endswith((".so", ".dylib")) for f in files)
        name = canonicalize_name(dist.metadata["Name"])
        build = f"py{PY_XY.replace('.', '')}h0_0" if binary else "pyhd8ed1ab_0"
        depends = sorted({canonicalize_name(Requirement(r).name) for r in dist.requires or [] if "extra ==" not in r})
        records.append(
            _conda_record(
                name,
                dist.version,
                build,
                subdir if binary else "noarch",
                files,
                depends,
                name if name in wanted else "",
            )
        )

    if conda_root:
        cmd = f"# cmd: constructor /tmp/tmpinstall {dest}"
    elif dest.parent.name == "envs":
        cmd = f"# cmd: {dest.parent.parent}/bin/conda create -n {dest.name} {' '.join(specs)}"
    else:
        cmd = f"# cmd: conda create -p {dest} {' '.join(specs)}"
    links = "\n".join(f"+conda-forge/{r['subdir']}::{r['name']}-{r['version']}-{r['build']}" for r in records)
    _write(
        dest / "conda-meta" / "history",
        f"==> {HISTORY_DATE} <==\n{cmd}\n# conda version: {CONDA_VERSION}\n{links}\n# update specs: {specs!r}\n",
    )
    for record in records:
        _write_record(dest, record)
    return dest


# ------------------------------------------------------------------------------------------------- venvs


def _create_venv(python: Path, dest: Path, tool: str, system_site: bool) -> None:
    if tool == "virtualenv":
        cmd = [
            sys.executable,
            "-m",
            "virtualenv",
            "--no-seed",
            "--no-periodic-update",
            "--app-data",
            str(_VIRTUALENV_APP_DATA),
            "-p",
            str(python),
        ]
    elif tool == "uv":
        from uv import find_uv_bin

        cmd = [find_uv_bin(), "venv", "--no-config", "--no-python-downloads", "--quiet", "--python", str(python)]
    elif tool == "venv":
        cmd = [str(python), "-m", "venv", "--without-pip"]
    else:
        raise ValueError(f"unknown tool {tool!r}: virtualenv, uv or venv")
    if system_site:
        cmd.append("--system-site-packages")
    _run([*cmd, str(dest)], env=_tool_env())


def make_layered_env(
    base: Path, dest: Path, *, inherit: bool = True, tool: str = "virtualenv", packages: Iterable[str] = ()
) -> Path:
    """A real virtualenv made with a Conda prefix's interpreter: the layered env the project is about.

    ``inherit`` gives it the base's packages (``--system-site-packages``); ``packages`` are installed into
    the layer itself (copied from the running interpreter, see :func:`install_distributions`).
    """
    _create_venv(Path(base) / "bin" / "python", Path(dest), tool, inherit)
    wanted = list(packages)
    if wanted:
        install_distributions(site_packages(dest), wanted)
    return Path(dest)


def make_venv(dest: Path, *, tool: str = "uv", python: str | None = None, ipykernel: bool = False) -> Path:
    """A plain venv on a non-Conda interpreter (default: the real CPython behind the test run)."""
    _create_venv(Path(python) if python else base_python(), Path(dest), tool, False)
    if ipykernel:
        install_distributions(site_packages(dest), ["ipykernel"])
    return Path(dest)


def uv_install(prefix: Path, wheelhouse: Path, *specs: str, deps: bool = True, hardlink: bool = False) -> None:
    """What a user does by hand: ``pip install`` (here uv, offline from a wheelhouse) into an env. ``hardlink``: the
    files linked from uv's cache (``UV_CACHE_DIR``), as uv does where it can, whatever file systems the test uses."""
    from jupyter_layenv.create import installers

    uv = installers.find_uv()  # the uv the product itself would run
    assert uv is not None, "uv is a dependency of jupyter_layenv"
    settings = installers.InstallerSettings(find_links=(str(wheelhouse),), offline=True)
    with tempfile.TemporaryDirectory() as work:
        requirements = Path(work, "requirements.txt")
        requirements.write_text("".join(f"{spec}\n" for spec in specs), encoding="utf-8")
        options = () if deps else ("--no-deps",)
        cmd = installers.uv_command(uv, str(prefix / "bin" / "python"), str(requirements), settings, options)
        cmd += ["--link-mode", "hardlink"] if hardlink else []  # no request option: the tests' own
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120,
                       env=installers.installer_environment(settings))  # fmt: skip


def settle(*paths: Path, when: float = YESTERDAY) -> None:
    """The mtime of every directory under ``paths`` (and theirs) set to ``when``, by default yesterday: far outside
    the racy window.

    Directories only (what discovery's signatures hold): a file in a test prefix may be a hard link to the
    interpreter's own (its stdlib), whose mtime must not move (its bytecode would then be stale).
    """
    latest_ctime = 0
    for top in paths:
        for directory in [str(top)] + [os.path.join(d, n) for d, names, _files in os.walk(top) for n in names]:
            os.utime(directory, (when, when), follow_symlinks=False)
            latest_ctime = max(latest_ctime, os.lstat(directory).st_ctime_ns)
    # utime moved their ctime to now: a listing that starts before the file system's clock has passed it cannot tell
    # that from a change after its start (and reads them again); a real tree is settled long before. The ctime itself
    # is waited for, not a tick of the clock: the kernel may stamp it finer than its coarse clock, or that clock may
    # lag the change by more than a tick on a busy machine (a full CI run read a settled tree again).
    while fs_now_ns() <= latest_ctime:
        time.sleep(0.001)


# --------------------------------------------------------------------------- activation, state, kernelspecs


def write_activate_script(prefix: Path, name: str, body: str) -> Path:
    """``etc/conda/activate.d/<name>.sh``, sourced by ``conda activate`` (and so by an activated kernel)."""
    return _write(Path(prefix) / "etc" / "conda" / "activate.d" / f"{name}.sh", body, 0o644)


def write_conda_state(prefix: Path, env_vars: dict[str, str]) -> Path:
    """``conda-meta/state`` as ``conda env config vars set`` writes it: ``{"env_vars": {...}}``."""
    return _write(Path(prefix) / "conda-meta" / "state", json.dumps({"env_vars": dict(env_vars)}, indent=2))


def add_kernelspec(prefix: Path, dirname: str, spec: dict[str, object]) -> Path:
    """``share/jupyter/kernels/<dirname>/kernel.json``: a kernelspec the env ships (IRkernel, IJulia…)."""
    return _write(Path(prefix) / "share" / "jupyter" / "kernels" / dirname / "kernel.json", json.dumps(spec, indent=1))


def irkernel_spec(r_executable: str = "R") -> dict[str, object]:
    """What ``IRkernel::installspec()`` writes (R need not exist: such a spec is listed, not started)."""
    return {
        "argv": [r_executable, "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
        "display_name": "R",
        "language": "R",
    }


def add_ipykernel_spec(prefix: Path, python: Path | str | None = None) -> Path:
    """``share/jupyter/kernels/python3`` as ``<python> -m ipykernel install --prefix <prefix>`` writes it.

    Uses ipykernel's own writer (logos included), with ``argv[0]`` the env's python instead of ours.
    ``python="python"`` gives the spec that ipykernel's wheel ships and pip unpacks.
    """
    from ipykernel.kernelspec import make_ipkernel_cmd, write_kernel_spec

    python = str(python) if python is not None else str(Path(prefix) / "bin" / "python")
    dest = Path(prefix) / "share" / "jupyter" / "kernels" / "python3"
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_kernel_spec(dest, overrides={"argv": make_ipkernel_cmd(executable=python)})
    return dest / "kernel.json"


# ------------------------------------------------------------------------------------------- broken envs


def make_dangling_python_venv(dest: Path) -> Path:
    """A venv whose interpreter was uninstalled: valid ``pyvenv.cfg``, ``bin/python`` links to nothing."""
    dest = Path(dest)
    gone_home = dest.parent / ".uninstalled-python-3.10.4" / "bin"  # never created
    _write(
        dest / "pyvenv.cfg",
        f"home = {gone_home}\nimplementation = CPython\nversion_info = 3.10.4.final.0\n"
        f"virtualenv = 20.26.6\ninclude-system-site-packages = false\nbase-prefix = {gone_home.parent}\n"
        f"base-exec-prefix = {gone_home.parent}\nbase-executable = {gone_home}/python3.10\n",
    )
    (dest / "bin").mkdir(exist_ok=True)
    (dest / "bin" / "python3.10").symlink_to(gone_home / "python3.10")
    (dest / "bin" / "python").symlink_to("python3.10")
    (dest / "bin" / "python3").symlink_to("python3.10")
    (dest / "lib" / "python3.10" / "site-packages").mkdir(parents=True)
    return dest


def make_garbled_pyvenv(dest: Path, *, variant: str = "binary") -> Path:
    """A venv dir whose ``pyvenv.cfg`` is unusable: ``binary`` garbage, or ``no-home`` (text, no ``home``).

    Its ``bin/python`` is a working interpreter, so only the cfg makes it broken.
    """
    dest = Path(dest)
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    if variant == "binary":
        garbage = b"\x7fELF\x00\xff\xfe\x00h\x00o\x00m\x00e\xc3\x28\x00=\n\xa0\xa1"
        (dest / "pyvenv.cfg").write_bytes(garbage * 8)
    elif variant == "no-home":
        _write(dest / "pyvenv.cfg", "include-system-site-packages = false\nversion = 3.11.7\n")
    else:
        raise ValueError(f"unknown variant {variant!r}")
    (dest / "bin" / "python").symlink_to(base_python())
    return dest


def make_orphan_layer(dest: Path, *, base: Path | None = None) -> Path:
    """A real layered env whose Conda base was deleted afterwards (``conda remove --all`` of the base)."""
    dest = Path(dest)
    base = Path(base) if base is not None else dest.parent / f".{dest.name}-deleted-base"
    make_conda_prefix(base)
    make_layered_env(base, dest, inherit=True)
    shutil.rmtree(base)
    return dest


@dataclass(frozen=True)
class SymlinkLoop:
    """What :func:`make_symlink_loop` made."""

    a: Path
    b: Path
    venv: Path
    back_link: Path


def make_symlink_loop(dir: Path) -> SymlinkLoop:
    """``loop_a -> loop_b``, ``loop_b -> loop_a`` in ``dir``, and ``loop_venv`` (a real venv) whose
    ``parent`` symlink points back at ``dir``: a walker that follows links never ends."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    a, b = dir / "loop_a", dir / "loop_b"
    a.symlink_to("loop_b")
    b.symlink_to("loop_a")
    venv = make_venv(dir / "loop_venv", tool="uv")
    back = venv / "parent"
    back.symlink_to("..")
    return SymlinkLoop(a, b, venv, back)


def make_unreadable_env(dest: Path) -> Path:
    """A Conda-style env dir with mode 000.

    Tests run as root in CI, and root reads it anyway (permissions are not enforced for root): there it is
    an ordinary env. As any other user listing it fails with EACCES. Restore the mode before deleting it.
    """
    dest = Path(dest)
    _write(dest / "conda-meta" / "history", f"==> {HISTORY_DATE} <==\n# cmd: conda create -p {dest} python\n")
    (dest / "bin").mkdir()
    (dest / "bin" / "python").symlink_to(base_python())
    dest.chmod(0)
    return dest


# ------------------------------------------------------------------------------------------ the home tree


@dataclass
class Tree:
    """Every path of :func:`build_home_tree` (a fake HOME close to a real user's machine)."""

    home: Path
    conda_root: Path  # ~/miniconda3, ipykernel in base
    py311_ai: Path  # envs/py311_ai: ipykernel, marker module, activate.d script, python3 kernelspec
    noipk: Path  # envs/noipk: no ipykernel -> listed, not a kernel
    rstats: Path  # envs/rstats: python without ipykernel + IRkernel spec + conda-meta/state
    myexp_env: Path  # envs/py311_ai/myexp_env: virtualenv layer (inherit), layer-only marker
    proj_uv: Path  # ~/.virtualenvs/proj_uv: uv layer on py311_ai (inherit)
    plain: Path  # ~/.virtualenvs/plain: uv venv on the pyenv python, ipykernel installed with its wheel data
    noinherit: Path  # ~/.venvs/noinherit: virtualenv layer on py311_ai, no system site, no ipykernel
    listed_env: Path  # ~/elsewhere/listed_env: only in ~/.conda/environments.txt
    stale_listed: Path  # in environments.txt but deleted (conda leaves such lines behind); does not exist
    rc_env: Path  # ~/more_envs/rc_env: only through envs_dirs of ~/.condarc ("~/more_envs")
    environments_txt: Path
    condarc: Path
    dangling: Path  # ~/.virtualenvs/dangling
    garbled: Path  # ~/.virtualenvs/garbled
    orphan: Path  # ~/.virtualenvs/orphan, base was ~/miniconda3/envs/old_base (deleted)
    orphan_deleted_base: Path
    loop: SymlinkLoop  # ~/.virtualenvs/loop_a, loop_b, loop_venv (a valid plain venv, no ipykernel)
    pyenv_python: Path  # the interpreter behind `plain`
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def python_kernel_envs(self) -> list[Path]:
        """Envs whose python can import ipykernel (own site-packages or inherited from the base)."""
        return [self.conda_root, self.py311_ai, self.myexp_env, self.proj_uv, self.plain, self.listed_env, self.rc_env]

    @property
    def not_kernel_envs(self) -> list[Path]:
        """Valid envs that must be listed with a reason, not as Python kernels (rstats has an R kernel)."""
        return [self.noipk, self.rstats, self.noinherit, self.loop.venv]

    @property
    def broken(self) -> list[Path]:
        """Not usable environments at all: they belong in ``skipped``."""
        return [self.dangling, self.garbled, self.orphan, self.loop.a, self.loop.b]


def _timed(timings: dict[str, float], label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    timings[label] = round(time.perf_counter() - start, 2)
    return result


def build_home_tree(home: Path) -> Tree:
    """The whole discovery scenario under a fake HOME: Conda root and envs, layers, venvs, broken ones.

    Independent pieces are built in parallel (they are mostly subprocesses and link syscalls).
    """
    home = Path(home)
    root = home / "miniconda3"
    envs = root / "envs"
    vw, vs = home / ".virtualenvs", home / ".venvs"
    for d in (vw, vs, home / ".conda"):
        d.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    start = time.perf_counter()

    def py311_ai() -> None:
        env = _timed(t, "py311_ai", make_conda_prefix, envs / "py311_ai", ipykernel=True)
        add_pure_python_package(site_packages(env), "layenv_base_marker", "1.0", 'WHERE = "py311_ai"\n')
        write_activate_script(env, "layenv_test", "export LAYENV_ACTIVATED=py311_ai\n")
        add_ipykernel_spec(env)  # conda-forge's ipykernel package ships this file, prefix-patched
        # layers on py311_ai, in parallel once it exists
        with ThreadPoolExecutor(3) as pool:
            jobs = [
                pool.submit(_timed, t, "myexp_env (virtualenv)", make_layered_env, env, env / "myexp_env"),
                pool.submit(_timed, t, "proj_uv (uv)", make_layered_env, env, vw / "proj_uv", tool="uv"),
                pool.submit(
                    _timed, t, "noinherit (virtualenv)", make_layered_env, env, vs / "noinherit", inherit=False
                ),
            ]
            for job in jobs:
                job.result()
        add_pure_python_package(site_packages(env / "myexp_env"), "layenv_layer_marker", "1.0", 'WHERE = "myexp_env"\n')

    def rstats() -> None:
        env = _timed(t, "rstats", make_conda_prefix, envs / "rstats")
        add_kernelspec(env, "ir", irkernel_spec())
        write_conda_state(env, {"LAYENV_STATE": "rstats"})

    tasks = [
        py311_ai,
        lambda: _timed(t, "miniconda3 (root+ipykernel)", make_conda_prefix, root, conda_root=True, ipykernel=True),
        lambda: _timed(t, "noipk", make_conda_prefix, envs / "noipk"),
        rstats,
        lambda: _timed(t, "listed_env", make_conda_prefix, home / "elsewhere" / "listed_env", ipykernel=True),
        lambda: _timed(t, "rc_env", make_conda_prefix, home / "more_envs" / "rc_env", ipykernel=True),
        lambda: _timed(t, "plain (uv)", make_venv, vw / "plain", ipykernel=True),
        lambda: _timed(t, "orphan", make_orphan_layer, vw / "orphan", base=envs / "old_base"),
        lambda: _timed(t, "symlink loop", make_symlink_loop, vw),
    ]
    # the root and its envs are built at the same time: every builder only adds files, never replaces dirs
    envs.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()
    make_dangling_python_venv(vw / "dangling")
    make_garbled_pyvenv(vw / "garbled")

    listed = home / "elsewhere" / "listed_env"
    stale = home / "elsewhere" / "deleted_env"
    environments_txt = _write(
        home / ".conda" / "environments.txt",
        "".join(f"{p}\n" for p in (root, envs / "py311_ai", envs / "noipk", envs / "rstats", listed, stale)),
    )
    condarc = _write(
        home / ".condarc", "channels:\n  - conda-forge\nenvs_dirs:\n  - ~/more_envs\nauto_activate_base: false\n"
    )
    t["total"] = round(time.perf_counter() - start, 2)
    return Tree(
        home=home,
        conda_root=root,
        py311_ai=envs / "py311_ai",
        noipk=envs / "noipk",
        rstats=envs / "rstats",
        myexp_env=envs / "py311_ai" / "myexp_env",
        proj_uv=vw / "proj_uv",
        plain=vw / "plain",
        noinherit=vs / "noinherit",
        listed_env=listed,
        stale_listed=stale,
        rc_env=home / "more_envs" / "rc_env",
        environments_txt=environments_txt,
        condarc=condarc,
        dangling=vw / "dangling",
        garbled=vw / "garbled",
        orphan=vw / "orphan",
        orphan_deleted_base=envs / "old_base",
        loop=SymlinkLoop(vw / "loop_a", vw / "loop_b", vw / "loop_venv", vw / "loop_venv" / "parent"),
        pyenv_python=base_python(),
        timings=t,
    )


__all__ = [
    "LIB_PYTHON",
    "PYTHON_NAME",
    "PY_XY",
    "PY_XYZ",
    "SymlinkLoop",
    "Tree",
    "add_ipykernel_spec",
    "add_kernelspec",
    "add_pure_python_package",
    "base_python",
    "build_home_tree",
    "install_distributions",
    "irkernel_spec",
    "link_or_copy",
    "make_conda_prefix",
    "make_dangling_python_venv",
    "make_garbled_pyvenv",
    "make_layered_env",
    "make_orphan_layer",
    "make_symlink_loop",
    "make_unreadable_env",
    "make_venv",
    "read_pyvenv_cfg",
    "site_packages",
    "write_activate_script",
    "write_conda_state",
]
