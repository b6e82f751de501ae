"""One locator per kind of environment. Each reads files only: no ``conda``, no Python subprocess.

A locator turns configured places into candidate prefixes; :mod:`jupyter_layenv.discovery` inspects,
deduplicates and layers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import SkippedEnv, fast_init

SOURCE_CONDA_ROOT = "conda-root"
SOURCE_CONDA_ENVS = "conda-envs-dir"
SOURCE_ENVIRONMENTS_TXT = "environments.txt"
SOURCE_CONDARC = "condarc"
SOURCE_VENV_ROOT = "venv-root"
SOURCE_NESTED = "nested"
SOURCE_SERVER = "server-prefix"
SOURCE_CONFIGURED = "configured"


@fast_init
@dataclass(frozen=True, slots=True)
class Candidate:
    path: str
    source: str
    conda_root: str | None = None


@dataclass
class Located:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[SkippedEnv] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)  # the deps that are directories given to ``scan``
    # scanned directory -> the source and Conda root its children get (None: two scans gave different ones)
    origins: dict[str, tuple[str, str | None] | None] = field(default_factory=dict)

    def extend(self, other: Located) -> None:
        self.candidates.extend(other.candidates)
        self.skipped.extend(other.skipped)
        self.deps.extend(other.deps)
        self.scanned.extend(other.scanned)
        for directory, origin in other.origins.items():
            self.note_origin(directory, origin)

    def note_origin(self, directory: str, origin: tuple[str, str | None] | None) -> None:
        """``directory``'s children get ``origin``; two different ones for the same directory: ``None``."""
        self.origins[directory] = origin if self.origins.setdefault(directory, origin) == origin else None


# ``scan(directory)`` lists the env-like children of a directory and the ones it could not follow
# (symlink loops); the caller memoizes it by the directory's mtime.
ScanChildren = Callable[[str], tuple[list[str], list[SkippedEnv]]]


def scan_into(located: Located, scan: ScanChildren, directory: str, source: str, conda_root: str | None = None) -> None:
    children, skipped = scan(directory)
    located.deps.append(directory)
    located.scanned.append(directory)
    located.note_origin(directory, (source, conda_root))
    located.candidates.extend(Candidate(child, source, conda_root) for child in children)
    located.skipped.extend(skipped)
