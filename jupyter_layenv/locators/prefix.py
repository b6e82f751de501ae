"""What the files of one prefix say about it: interpreter, version, ipykernel, kernelspecs, activation.

Shared by every locator; reads directories and small files only, never runs the interpreter.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

from .. import fsread
from ..model import ShippedKernel

IS_WINDOWS = sys.platform == "win32"
_CONDA_PYTHON_RECORD = re.compile(r"^python-(\d+\.\d+(?:\.\d+)?)[-_].*\.json$")
_LIB_PYTHON = re.compile(r"^python(\d+\.\d+)t?$")
_VERSION = re.compile(r"^(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class PrefixFacts:
    path: str
    is_conda: bool
    is_conda_root: bool
    pyvenv: dict[str, str] | None
    python: str | None
    python_problem: str | None
    python_version: str | None
    site_packages: str | None
    has_ipykernel: bool
    ipykernel_resources: str | None
    kernels: tuple[ShippedKernel, ...]
    activate_scripts: tuple[str, ...]
    state_env_vars: tuple[tuple[str, str], ...]
    owner_uid: int
    writable: bool
    problem: str | None
    deps: tuple[str, ...]

    @property
    def is_venv(self) -> bool:
        return self.pyvenv is not None

    @property
    def bin_dir(self) -> str:
        return bin_dir(self.path, venv=self.is_venv)


def bin_dir(prefix: str, *, venv: bool) -> str:
    if IS_WINDOWS:
        return os.path.join(prefix, "Scripts") if venv else prefix
    return os.path.join(prefix, "bin")


def looks_like_env(path: str) -> bool:
    """Cheap test used while scanning a root: is this directory a venv or a Conda prefix?"""
    return fsread.exists(os.path.join(path, "pyvenv.cfg")) or fsread.exists(os.path.join(path, "conda-meta", "history"))


def looks_like_conda_root(path: str) -> bool:
    if not fsread.is_dir(os.path.join(path, "conda-meta")):
        return False
    return any(
        fsread.exists(os.path.join(path, marker))
        for marker in ("envs", "condabin", os.path.join("bin", "conda"), os.path.join("Scripts", "conda.exe"))
    )


def parse_pyvenv_cfg(text: str) -> dict[str, str] | None:
    """``key = value`` lines; ``None`` when the file is not a pyvenv.cfg at all (no ``home``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values if values.get("home") else None


def inspect_prefix(path: str) -> PrefixFacts:
    is_conda = fsread.exists(os.path.join(path, "conda-meta", "history"))
    problem: str | None = None
    pyvenv: dict[str, str] | None = None
    cfg_path = os.path.join(path, "pyvenv.cfg")
    deps = [path]
    if not is_conda and fsread.exists(cfg_path):
        deps.append(cfg_path)
        text = fsread.read_small_text(cfg_path)
        pyvenv = parse_pyvenv_cfg(text) if text is not None else None
        if pyvenv is None:
            problem = (
                f"garbled pyvenv.cfg (no 'home = …' line) in {path}: "
                "recreate the environment, e.g. `python -m venv --clear` with its interpreter"
            )
    conda_meta = os.path.join(path, "conda-meta")
    if is_conda:
        deps.append(conda_meta)

    python, python_problem = _find_python(path, venv=pyvenv is not None)
    site_packages, lib_version = _find_site_packages(path)
    if site_packages:
        # A healthy venv changes where it matters in site-packages; a Conda prefix also in its root
        # (nested venvs) and conda-meta (conda transactions). One stat less per venv keeps warm listings cheap.
        deps = [site_packages] if pyvenv is not None and problem is None else [*deps, site_packages]
    site_entries = fsread.listdir(site_packages) if site_packages else []
    has_ipykernel = "ipykernel" in site_entries or any(
        entry.startswith("ipykernel-") and entry.endswith((".dist-info", ".egg-info")) for entry in site_entries
    )
    resources = os.path.join(site_packages, "ipykernel", "resources") if site_packages else None
    kernels_dir = os.path.join(path, "share", "jupyter", "kernels")
    kernels = _read_kernelspecs(kernels_dir)
    if kernels:
        deps.append(kernels_dir)
    try:
        stat = os.stat(path)
        owner_uid = stat.st_uid
    except OSError as err:
        return _unusable(path, f"cannot read {path}: {err.strerror}; check its permissions")
    if not os.access(path, os.R_OK | os.X_OK):
        return _unusable(path, f"cannot read {path}: permission denied; ask its owner to make it readable")
    return PrefixFacts(
        path=path,
        is_conda=is_conda,
        is_conda_root=is_conda and looks_like_conda_root(path),
        pyvenv=pyvenv,
        python=python,
        python_problem=python_problem,
        python_version=_python_version(pyvenv, conda_meta if is_conda else None) or lib_version,
        site_packages=site_packages,
        has_ipykernel=has_ipykernel,
        ipykernel_resources=resources if "ipykernel" in site_entries else None,
        kernels=kernels,
        activate_scripts=_activate_scripts(path) if is_conda else (),
        state_env_vars=_state_env_vars(conda_meta) if is_conda else (),
        owner_uid=owner_uid,
        writable=os.access(path, os.W_OK),
        problem=problem,
        deps=tuple(deps),
    )


def _unusable(path: str, problem: str) -> PrefixFacts:
    return PrefixFacts(
        path=path,
        is_conda=False,
        is_conda_root=False,
        pyvenv=None,
        python=None,
        python_problem=None,
        python_version=None,
        site_packages=None,
        has_ipykernel=False,
        ipykernel_resources=None,
        kernels=(),
        activate_scripts=(),
        state_env_vars=(),
        owner_uid=-1,
        writable=False,
        problem=problem,
        deps=(path, os.path.dirname(path)),
    )


def _find_python(prefix: str, *, venv: bool) -> tuple[str | None, str | None]:
    """The env's interpreter, or why it has none usable (dangling link, symlink loop, absent)."""
    names = ("python.exe",) if IS_WINDOWS else ("python", "python3")
    directory = bin_dir(prefix, venv=venv)
    for name in names:
        candidate = os.path.join(directory, name)
        if fsread.exists(candidate):
            return candidate, None
        why = fsread.link_problem(candidate)
        if why:
            target = _readlink(candidate)
            return None, f"{candidate} is a {why}" + (f" (→ {target})" if target else "")
    return None, None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _find_site_packages(prefix: str) -> tuple[str | None, str | None]:
    if IS_WINDOWS:
        candidate = os.path.join(prefix, "Lib", "site-packages")
        return (candidate, None) if fsread.is_dir(candidate) else (None, None)
    lib = os.path.join(prefix, "lib")
    versions = sorted((match.group(1), entry) for entry in fsread.listdir(lib) if (match := _LIB_PYTHON.match(entry)))
    for version, entry in reversed(versions):
        candidate = os.path.join(lib, entry, "site-packages")
        if fsread.is_dir(candidate):
            return candidate, version
    return None, None


def _python_version(pyvenv: dict[str, str] | None, conda_meta: str | None) -> str | None:
    if pyvenv is not None:
        for key in ("version_info", "version"):
            match = _VERSION.match(pyvenv.get(key, ""))
            if match:
                return match.group(1)
    if conda_meta is not None:
        for entry in fsread.listdir(conda_meta):
            match = _CONDA_PYTHON_RECORD.match(entry)
            if match:
                return match.group(1)
    return None


def _read_kernelspecs(kernels_dir: str) -> tuple[ShippedKernel, ...]:
    found = []
    for dirname in sorted(fsread.listdir(kernels_dir)):
        resource_dir = os.path.join(kernels_dir, dirname)
        text = fsread.read_small_text(os.path.join(resource_dir, "kernel.json"))
        if text is None:
            continue
        try:
            spec = json.loads(text)
        except ValueError:
            continue
        if isinstance(spec, dict) and isinstance(spec.get("argv"), list) and spec["argv"]:
            found.append(ShippedKernel(dirname=dirname, resource_dir=resource_dir, spec=spec))
    return tuple(found)


def _activate_scripts(prefix: str) -> tuple[str, ...]:
    directory = os.path.join(prefix, "etc", "conda", "activate.d")
    return tuple(os.path.join(directory, name) for name in sorted(fsread.listdir(directory)) if name.endswith(".sh"))


def _state_env_vars(conda_meta: str) -> tuple[tuple[str, str], ...]:
    """``conda env config vars set`` stores variables in ``conda-meta/state``."""
    text = fsread.read_small_text(os.path.join(conda_meta, "state"))
    if not text:
        return ()
    try:
        env_vars = json.loads(text).get("env_vars") or {}
    except (ValueError, AttributeError):
        return ()
    return tuple((str(key), str(value)) for key, value in sorted(env_vars.items()) if isinstance(key, str))
