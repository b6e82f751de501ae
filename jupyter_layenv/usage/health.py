"""Health of an environment, read from files only: the seed's "don't mix conda and pip" and unmet requirements.

* ``pip-over-conda``: a ``*.dist-info`` whose ``INSTALLER`` is not conda, for a name ``conda-meta`` records: pip
  replaced (or shadowed) the conda package, and conda no longer knows which files are its own.
* ``duplicate-distribution``: two ``*.dist-info`` / ``*.egg-info`` of one name in one site-packages: which one
  ``importlib.metadata`` (and pip) see is an accident of directory order.
* ``unmet-requirement``: a ``Requires-Dist`` of an installed distribution (markers evaluated for the env's Python)
  that nothing the env sees satisfies, across a layer and the base it inherits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from packaging.markers import InvalidMarker, default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .. import fsread, inventory
from ..locators.prefix import site_packages_of
from ..model import LAYERED, Discovered, Environment

PIP_OVER_CONDA = "pip-over-conda"
DUPLICATE = "duplicate-distribution"
UNMET = "unmet-requirement"


@dataclass(frozen=True)
class HealthIssue:
    kind: str
    package: str | None
    message: str

    def json(self) -> dict[str, str | None]:
        return {"kind": self.kind, "package": self.package, "message": self.message}


@dataclass(frozen=True)
class InstalledDist:
    """One ``*.dist-info`` / ``*.egg-info`` directory and what its metadata says."""

    name: str
    version: str
    installer: str
    entry: str  # the directory's name in site-packages
    requires: tuple[str, ...]

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


def installed(prefix: str, python_version: str | None) -> list[InstalledDist]:
    """Every distribution directory of the site-packages of a prefix's Python (``python_version``, as discovery
    lists it; unknown: the newest in ``lib``), duplicates included."""
    site, _version, entries = site_packages_of(prefix, python_version)
    if site is None:
        return []
    found = []
    for entry in sorted(entries):
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        directory = os.path.join(site, entry)
        name, version, requires = _metadata(directory, entry)
        installer = (fsread.read_small_text(os.path.join(directory, "INSTALLER")) or "").strip()
        found.append(InstalledDist(name, version, installer, entry, requires))
    return found


def _metadata(directory: str, entry: str) -> tuple[str, str, tuple[str, ...]]:
    """Name, Version and the Requires-Dist lines of a METADATA (PKG-INFO for an egg-info) header."""
    stem = entry.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    version = version.split("-")[0]
    requires: list[str] = []
    filename = "METADATA" if entry.endswith(".dist-info") else "PKG-INFO"
    text = fsread.read_small_text(os.path.join(directory, filename)) or ""
    for line in text.splitlines():
        if not line.strip():
            break  # the body (long description) starts here
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key == "name":
            name = value.strip()
        elif key == "version":
            version = value.strip()
        elif key == "requires-dist":
            requires.append(value.strip())
    return name, version, tuple(requires)


def check(env: Environment, base: Environment | None) -> list[HealthIssue]:
    """The health issues of one environment (a layer's: including what it breaks in the base it inherits)."""
    own = installed(env.path, env.python_version)
    issues = _duplicates(env, own)
    if fsread.is_dir(os.path.join(env.path, "conda-meta")):
        issues += _pip_over_conda(env, own)
    inherits = env.kind == LAYERED and env.inherits_base and base is not None
    base_dists = installed(base.path, base.python_version) if inherits and base is not None else []
    visible = _visible(own, base_dists)
    marker_env = _marker_environment(env.python_version)
    for dist in own:
        issues += _unmet(env, dist, visible, marker_env)
    if base_dists:
        alone = _visible(base_dists, [])
        for dist in base_dists:
            if visible.get(dist.key) is not dist:
                continue  # shadowed by the layer: its own requirements do not apply
            broken = _unmet(env, dist, visible, marker_env)
            met_in_base = not _unmet(env, dist, alone, marker_env)
            issues += broken if met_in_base else []  # the base's own problems are reported on the base
    return issues


def of_all(discovered: Discovered) -> dict[str, list[HealthIssue]]:
    """Every env's issues, by env id (``jupyter layenv doctor``)."""
    return {env.id: check(env, discovered.by_path(env.base) if env.base else None) for env in discovered.environments}


def _visible(layer: list[InstalledDist], base: list[InstalledDist]) -> dict[str, InstalledDist]:
    """What ``import`` and ``importlib.metadata`` find: the layer's distributions first, then the base's."""
    seen: dict[str, InstalledDist] = {}
    for dist in [*layer, *base]:
        seen.setdefault(dist.key, dist)
    return seen


def _marker_environment(python_version: str | None) -> dict[str, str]:
    """This machine's markers with the env's Python (the env runs here, possibly with another Python)."""
    markers = {key: str(value) for key, value in default_environment().items()}
    markers["extra"] = ""
    if python_version:
        parts = python_version.split(".")
        markers["python_version"] = ".".join(parts[:2])
        if len(parts) >= 3:
            markers["python_full_version"] = python_version
    return markers


def _unmet(
    env: Environment, dist: InstalledDist, visible: dict[str, InstalledDist], marker_env: dict[str, str]
) -> list[HealthIssue]:
    issues = []
    for line in dist.requires:
        try:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(marker_env):
                continue
        except (InvalidRequirement, InvalidMarker):
            continue  # unreadable metadata is the distribution's problem, not a missing package
        found = visible.get(canonicalize_name(req.name))
        if found is not None and _satisfies(req, found.version):
            continue
        wanted = f"{req.name}{req.specifier}"
        have = "is not installed" if found is None else f"{found.version} is installed"
        issues.append(
            HealthIssue(
                UNMET,
                dist.name,
                f"{dist.name} {dist.version} requires {wanted}, but {req.name} {have} in {env.name}: install it "
                f"into this environment (`%pip install '{wanted}'` in its kernel), or remove {dist.name}",
            )
        )
    return issues


def _satisfies(req: Requirement, version: str) -> bool:
    if not req.specifier:
        return True
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # a version packaging cannot read cannot be judged: not flagged


def _duplicates(env: Environment, dists: list[InstalledDist]) -> list[HealthIssue]:
    by_key: dict[str, list[InstalledDist]] = {}
    for dist in dists:
        by_key.setdefault(dist.key, []).append(dist)
    issues = []
    for copies in by_key.values():
        if len(copies) < 2:
            continue
        entries = ", ".join(copy.entry for copy in copies)
        name = copies[0].name
        issues.append(
            HealthIssue(
                DUPLICATE,
                name,
                f"{len(copies)} copies of {name} are installed in {env.name} ({entries}): which one is used is "
                f"an accident; remove the stale directories from site-packages, then reinstall {name} once",
            )
        )
    return issues


def _pip_over_conda(env: Environment, dists: list[InstalledDist]) -> list[HealthIssue]:
    records: dict[str, dict[str, Any]] = {
        canonicalize_name(str(r["name"])): r for r in inventory.conda_records(env.path)
    }
    issues = []
    for dist in dists:
        record = records.get(dist.key)
        if record is None or dist.installer.lower() == "conda":
            continue
        by = dist.installer or "an unknown installer"
        issues.append(
            HealthIssue(
                PIP_OVER_CONDA,
                dist.name,
                f"{dist.name} {dist.version} was installed by {by} over the conda package {record['name']} "
                f"{record['version']} in {env.name}: conda no longer knows which files are its own. Put it back "
                f"with `conda install --force-reinstall -p {env.path} {record['name']}`, and install pip packages "
                f"into a layer instead (a new environment on the base {env.id} with the package {dist.name})",
            )
        )
    return issues
