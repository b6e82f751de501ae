"""Plain data passed from the locators through discovery to the kernel specs and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import fsread

CONDA_BASE = "conda-base"
CONDA_ENV = "conda-env"
VENV = "venv"
LAYERED = "layered"

SCOPE_USER = "user"
SCOPE_GROUP = "group"
SCOPE_SYSTEM = "system"

# Files a jupyter_layenv job writes into an env it creates: discovery reads them, the builder writes them.
BUILDING_MARKER = ".layenv-building"  # present while a job builds the env; the env is not listed meanwhile
PROVENANCE = "layenv.json"  # base, requested packages, display name, creator, created time
BEING_CREATED = "being created"  # how discovery's skip reason for a marked env begins
DELETING_PREFIX = ".layenv-deleting-"  # an env being deleted is first renamed to this hidden name: never listed


@dataclass(frozen=True)
class ShippedKernel:
    """A kernelspec an environment ships in ``share/jupyter/kernels`` (IRkernel, IJulia, xeus…)."""

    dirname: str
    resource_dir: str
    spec: dict[str, Any]

    @property
    def language(self) -> str:
        return str(self.spec.get("language") or "")


@dataclass(frozen=True)
class Activation:
    """What a process needs to run "activated" in an environment, base first."""

    path_dirs: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()
    scripts: tuple[tuple[str, str], ...] = ()  # (prefix the script belongs to, script path)


@dataclass(frozen=True)
class ScopedRoot:
    """A configured system or group root, as the filesystem shows it to the server's user."""

    id: str  # "group:<dirname>" or "system:<path>"
    scope: str
    path: str
    owner_uid: int
    gid: int
    member: bool  # the server's user is in the root's group (system roots: always)
    writable: bool


@dataclass(frozen=True)
class Environment:
    id: str
    name: str
    path: str
    dir_id: tuple[int, int]  # (st_dev, st_ino), to recognise the directory however a path reaches it
    kind: str
    base: str | None
    python: str | None
    python_version: str | None
    scope: str
    writable: bool
    owner_uid: int
    has_ipykernel: bool
    owner_gid: int = -1
    creator: str | None = None  # who created it with jupyter_layenv (layenv.json)
    inherits_base: bool = False
    conda_root: str | None = None
    conda_env_name: str | None = None
    chain: tuple[str, ...] = ()  # names from the base to this env, for display names
    shipped_kernels: tuple[ShippedKernel, ...] = ()
    ipykernel_resources: str | None = None
    activation: Activation = field(default_factory=Activation)
    skipped_reason: str | None = None
    is_server_prefix: bool = False
    display_name: str | None = None  # chosen when the env was created (layenv.json)


@dataclass(frozen=True)
class SkippedEnv:
    """A directory that looks like an environment but cannot be used at all."""

    path: str
    reason: str


@dataclass(frozen=True)
class KernelEntry:
    name: str
    display_name: str
    language: str
    env_id: str
    resource_dir: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Discovered:
    environments: tuple[Environment, ...] = ()
    skipped: tuple[SkippedEnv, ...] = ()
    roots: tuple[ScopedRoot, ...] = ()

    def by_id(self, env_id: str) -> Environment | None:
        return next((env for env in self.environments if env.id == env_id), None)

    def by_path(self, path: str) -> Environment | None:
        return next((env for env in self.environments if env.path == path), None)

    def by_ref(self, ref: str) -> Environment | None:
        """An env named by its id or by its path, as requests and the command line name bases and envs."""
        if "/" in ref or "\\" in ref:
            return self.by_path(fsread.expand(ref))
        return self.by_id(ref)

    @cached_property
    def layers(self) -> dict[str, list[Environment]]:
        """The envs built on each base, by the base's path (computed once per discovery result)."""
        built_on: dict[str, list[Environment]] = {}
        for env in self.environments:
            if env.base:
                built_on.setdefault(env.base, []).append(env)
        return built_on
