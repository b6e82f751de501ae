"""The distributions a prefix holds, with their metadata files: what a resolver must treat as installed.

Blocking file reads: callers on the event loop run these in a thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..inventory import Dist, distributions
from ..locators.prefix import site_packages_of


@dataclass(frozen=True)
class Installed:
    """One installed distribution and the file holding its core metadata (METADATA or PKG-INFO)."""

    dist: Dist
    metadata: str | None

    @property
    def key(self) -> str:
        return self.dist.key

    def requires(self) -> list[Requirement]:
        """Its ``Requires-Dist`` (extras-only ones included: a caller filters by marker)."""
        if self.metadata is None:
            return []
        found = []
        try:
            with open(self.metadata, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key.lower() == "requires-dist":
                        try:
                            found.append(Requirement(value.strip()))
                        except InvalidRequirement:
                            continue
        except OSError:
            return []
        return found


def installed(prefix: str, python_version: str | None) -> dict[str, Installed]:
    """The distributions in a prefix's own site-packages (of its Python, see ``inventory``), by canonical name."""
    site, _version, entries = site_packages_of(prefix, python_version)
    files: dict[str, str] = {}
    for entry in entries:
        if entry.endswith(".dist-info"):
            files.setdefault(canonicalize_name(entry[: -len(".dist-info")].partition("-")[0]),
                             os.path.join(site or "", entry, "METADATA"))  # fmt: skip
        elif entry.endswith(".egg-info"):
            files.setdefault(canonicalize_name(entry[: -len(".egg-info")].partition("-")[0]),
                             os.path.join(site or "", entry, "PKG-INFO"))  # fmt: skip
    return {dist.key: Installed(dist, files.get(dist.key)) for dist in distributions(prefix, python_version)}
