"""Which packages an environment has, read from files: ``*.dist-info`` / ``*.egg-info`` and ``conda-meta``.

The site-packages read is the one of the env's Python: ``python_version`` is what discovery gives the env
(``Environment.python_version``). A ``lib/python3.X`` another Python left behind (a Conda env whose Python was
changed keeps the old one, pip-installed leftovers and all) is not what the env imports. ``None`` only where nothing
knows the version; the newest ``lib/python3.X`` is read then. Blocking file reads: callers on the event loop run
these in a thread.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from . import fsread
from .locators.prefix import site_packages_of
from .model import LAYERED, Environment

# What `pip freeze` leaves out too: the installer's own tooling, not the project's packages.
TOOLING = frozenset({"pip", "setuptools", "wheel", "distribute"})
MAX_RECORD = 256 * 1024 * 1024  # a conda-meta record larger than this is not one conda wrote


@dataclass(frozen=True)
class Dist:
    name: str  # as the distribution spells it (METADATA Name)
    version: str
    installer: str = ""  # the INSTALLER file: "conda", "pip", "uv"…

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


def distributions(prefix: str, python_version: str | None) -> list[Dist]:
    """The distributions installed in a prefix's own site-packages (its Python's), sorted by name."""
    return [dist for dist, _metadata in distributions_with_metadata(prefix, python_version)]


def distributions_with_metadata(prefix: str, python_version: str | None) -> list[tuple[Dist, str]]:
    """:func:`distributions`, each with its core metadata file (METADATA, or an egg-info's PKG-INFO): one listing."""
    site, _version, entries = site_packages_of(prefix, python_version)
    if site is None:
        return []
    found: dict[str, tuple[Dist, str]] = {}
    for entry in entries:
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        stem = entry.rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
        metadata = os.path.join(site, entry, "METADATA" if entry.endswith(".dist-info") else "PKG-INFO")
        headers = _headers(metadata)
        installer = (fsread.read_small_text(os.path.join(site, entry, "INSTALLER")) or "").strip()
        dist = Dist(headers.get("name", name), headers.get("version", version.split("-")[0]), installer)
        found.setdefault(dist.key, (dist, metadata))
    return sorted(found.values(), key=lambda found: found[0].key)


def has_distribution(prefix: str, python_version: str | None, name: str) -> bool:
    """From the names of the ``*.dist-info`` / ``*.egg-info`` entries only (no METADATA read)."""
    _site, _version, entries = site_packages_of(prefix, python_version)
    return canonicalize_name(name) in dist_names(entries)


def dist_names(entries: list[str]) -> dict[str, str]:
    """The distributions a site-packages listing names, canonical name -> the name as its entry spells it, from the
    ``*.dist-info`` / ``*.egg-info`` entry names alone (no METADATA read)."""
    return {
        canonicalize_name(entry.partition("-")[0]): entry.partition("-")[0]
        for entry in entries
        if entry.endswith((".dist-info", ".egg-info"))
    }


def _headers(path: str) -> dict[str, str]:
    """``Name`` and ``Version`` from the top of a METADATA file (stops at the first blank line)."""
    headers: dict[str, str] = {}
    try:
        with fsread.open_regular(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, sep, value = line.partition(":")
                if sep and key.lower() in ("name", "version"):
                    headers.setdefault(key.lower(), value.strip())
                if len(headers) == 2:
                    break
    except OSError:
        pass
    return headers


def conda_records(prefix: str) -> list[dict[str, Any]]:
    """The package records conda wrote in ``conda-meta/*.json`` (name, version, build, channel)."""
    meta = os.path.join(prefix, "conda-meta")
    records = []
    for entry in sorted(fsread.listdir(meta)):
        if not entry.endswith(".json"):
            continue
        try:  # not fsread.read_small_text: a record lists every file of its package (torch's: megabytes)
            with fsread.open_regular(os.path.join(meta, entry), "rb") as handle:
                record = json.loads(handle.read(MAX_RECORD))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("name") and record.get("version"):
            records.append(record)
    return sorted(records, key=lambda r: str(r["name"]))


def package_split(
    env: Environment, base: Environment | None, requested: frozenset[str] = frozenset()
) -> dict[str, list[dict[str, str]]]:
    """A layer's own packages, those it inherits from its base, and the layer ones shadowing the base's.

    A shadow's ``reason``: ``requested`` (named for this layer: an intended override, ``requested`` holds those
    names), ``duplicate`` (the base's very version, copied), ``dependency`` (pulled in by something else).
    """
    layer = distributions(env.path, env.python_version)
    inherits = env.kind == LAYERED and env.inherits_base and base is not None
    base_dists = {dist.key: dist for dist in distributions(base.path, base.python_version)} if inherits and base else {}
    own = {dist.key for dist in layer}
    shadowed = []
    for dist in layer:
        if dist.key not in base_dists:
            continue
        base_version = base_dists[dist.key].version
        reason = "duplicate" if base_version == dist.version else "requested" if dist.key in requested else "dependency"
        shadowed.append({"name": dist.name, "layer_version": dist.version, "base_version": base_version,
                         "reason": reason})  # fmt: skip
    return {
        "layer": [{"name": d.name, "version": d.version} for d in layer],
        "inherited": [{"name": d.name, "version": d.version} for k, d in base_dists.items() if k not in own],
        "shadowed": shadowed,
    }
