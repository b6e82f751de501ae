"""The distributions a prefix holds, with their metadata files: what a resolver must treat as installed.

Blocking file reads: callers on the event loop run these in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from .. import fsread
from ..inventory import Dist, distributions_with_metadata


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
            with fsread.open_regular(self.metadata, encoding="utf-8", errors="replace") as handle:
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
    return {
        dist.key: Installed(dist, metadata) for dist, metadata in distributions_with_metadata(prefix, python_version)
    }
