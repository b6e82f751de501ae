"""Plain data passed from the locators through discovery to the kernel specs and the API."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

_T = TypeVar("_T")


def require_field_order(cls: type, names: tuple[str, ...], caller: str) -> None:
    """Raises at import when ``cls``'s fields are not ``names`` in that order: ``caller`` builds it by position
    (a keyword call of a record made per listed env costs a third more), so a reordered field would land in the
    wrong slot silently."""
    if tuple(item.name for item in dataclasses.fields(cls)) != names:
        raise TypeError(f"{caller}: {cls.__name__}'s fields are not in the order it passes them")


def fast_init(cls: type[_T]) -> type[_T]:
    """A slotted dataclass, declared frozen, whose ``__init__`` fills each slot with a plain assignment.

    For the records a listing builds per env (about 80 fields per env). A frozen dataclass sets each field through
    ``object.__setattr__`` (0.1 µs a field), a descriptor's ``__set__`` half that; a plain assignment to a slot of a
    class without a ``__setattr__`` of its own is a specialized instruction, a quarter of it: a cold listing at 500
    envs took 2 ms (7 %) less. So the record's class keeps everything a frozen dataclass has (equality, hash, its
    ``__dataclass_params__``) but the ``__setattr__`` and ``__delattr__`` that raise at run time: its immutability
    is the type checker's to enforce (``frozen=True`` in the source makes mypy, which CI runs, reject any assignment
    to a field), not a check per field at run time.
    Slots rather than an instance ``__dict__``: one object fewer per record for the garbage collector to walk.
    Same parameters, defaults and default factories, fields in the same order; ``init=False`` fields get their
    default.
    """
    missing = dataclasses.MISSING
    if (
        not dataclasses.is_dataclass(cls)
        or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        or hasattr(cls, "__post_init__")
        or "__slots__" not in cls.__dict__
    ):
        raise TypeError(f"fast_init: {cls.__name__} must be a frozen slotted dataclass without __post_init__")
    namespace: dict[str, Any] = {"_MISSING": missing}
    params, lines = [], []
    for item in dataclasses.fields(cls):
        name = item.name
        if item.kw_only:
            raise TypeError(f"fast_init: {cls.__name__}.{name} is keyword-only")
        if not item.init:
            if item.default is missing:
                raise TypeError(f"fast_init: {cls.__name__}.{name} is not in __init__ and has no default")
            namespace[f"_default_{name}"] = item.default
            lines.append(f"    self.{name} = _default_{name}\n")
            continue
        if item.default is not missing:
            namespace[f"_default_{name}"] = item.default
            params.append(f"{name}=_default_{name}")
        elif item.default_factory is not missing:
            namespace[f"_factory_{name}"] = item.default_factory
            params.append(f"{name}=_MISSING")
            lines.append(f"    if {name} is _MISSING:\n        {name} = _factory_{name}()\n")
        else:
            params.append(name)
        lines.append(f"    self.{name} = {name}\n")
    source = f"def __init__(self, {', '.join(params)}):\n{''.join(lines)}"
    exec(source, namespace)  # as dataclasses builds its own __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]  # replacing it is the point, as dataclasses does
    del cls.__setattr__, cls.__delattr__  # the frozen dataclass's (see above): object's again, for the assignments
    return cls


CONDA_BASE = "conda-base"
CONDA_ENV = "conda-env"
VENV = "venv"
LAYERED = "layered"

# What each kind is, in words, for a message that says what an env is ("x is a layered environment: ...").
KIND_NOUNS = {
    CONDA_BASE: "a Conda root environment",
    CONDA_ENV: "a Conda environment",
    VENV: "a virtualenv",
    LAYERED: "a layered environment",
}


def kind_noun(kind: str) -> str:
    """The kind in words with its article; an unknown kind as itself."""
    return KIND_NOUNS.get(kind, f"a {kind} environment")


SCOPE_USER = "user"
SCOPE_GROUP = "group"
SCOPE_SYSTEM = "system"

# Files a jupyter_layenv job writes into an env it creates: discovery reads them, the builder writes them.
BUILDING_MARKER = ".layenv-building"  # present while a job builds the env; the env is not listed meanwhile
PROVENANCE = "layenv.json"  # base, requested packages, display name, creator, created time
BEING_CREATED = "being created"  # how discovery's skip reason for a marked env begins
DELETING_PREFIX = ".layenv-deleting-"  # an env being deleted is first renamed to this hidden name: never listed


@fast_init
@dataclass(frozen=True, slots=True)
class ShippedKernel:
    """A kernelspec an environment ships in ``share/jupyter/kernels`` (IRkernel, IJulia, xeus…)."""

    dirname: str
    resource_dir: str
    spec: dict[str, Any]

    @property
    def language(self) -> str:
        return str(self.spec.get("language") or "")


@fast_init
@dataclass(frozen=True, slots=True)
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


@fast_init
@dataclass(frozen=True, slots=True)
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


@fast_init
@dataclass(frozen=True, slots=True)
class SkippedEnv:
    """A directory that looks like an environment but cannot be used at all."""

    path: str
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class KernelEntry:
    """One env kernel; ``item`` is its ``get_all_specs`` item, made once with the entry and served as it is."""

    name: str
    language: str
    env_id: str
    item: dict[str, Any]  # {"resource_dir": ..., "spec": ...}

    @property
    def spec(self) -> dict[str, Any]:
        return self.item["spec"]

    @property
    def resource_dir(self) -> str:
        return self.item["resource_dir"]


@dataclass(frozen=True)
class Discovered:
    environments: tuple[Environment, ...] = ()
    skipped: tuple[SkippedEnv, ...] = ()
    roots: tuple[ScopedRoot, ...] = ()

    def by_id(self, env_id: str) -> Environment | None:
        return next((env for env in self.environments if env.id == env_id), None)

    def by_path(self, path: str) -> Environment | None:
        return self._paths.get(path)

    @cached_property
    def _paths(self) -> dict[str, Environment]:
        """The envs by path (made once per discovery result: the listing looks up many of them on every poll)."""
        found: dict[str, Environment] = {}
        for env in self.environments:
            found.setdefault(env.path, env)
        return found

    def label(self, env: Environment) -> str:
        """How a message names ``env``: its name, and where another env here has that name too (a Conda env of one
        name in two installs, a venv named like a Conda env), its path, which tells them apart."""
        count = self._names.get(env.name, 0)
        unique = count <= 1 if env.path in self._paths else count == 0  # a deletable skipped env is not listed
        return env.name if unique else f"{env.name} ({env.path})"

    @cached_property
    def _names(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for env in self.environments:
            counts[env.name] = counts.get(env.name, 0) + 1
        return counts

    @cached_property
    def layers(self) -> dict[str, list[Environment]]:
        """The envs built on each base, by the base's path (computed once per discovery result)."""
        built_on: dict[str, list[Environment]] = {}
        for env in self.environments:
            if env.base:
                built_on.setdefault(env.base, []).append(env)
        return built_on

    @cached_property
    def held(self) -> dict[str, list[Environment]]:
        """The envs inside each env's directory (a venv nested in a Conda env), by the holder's path: each env's
        parent directories looked up, not every env compared with every other (a listing asks it of each env)."""
        paths = {env.path for env in self.environments}
        held: dict[str, list[Environment]] = {}
        for env in self.environments:
            parent = os.path.dirname(env.path)
            while parent != os.path.dirname(parent):
                if parent in paths:
                    held.setdefault(parent, []).append(env)
                parent = os.path.dirname(parent)
        return held


def group_root_of(env: Environment, discovered: Discovered) -> str | None:
    """The group root a group env is in (where its members' uses are kept)."""
    if env.scope != SCOPE_GROUP:
        return None
    for root in discovered.roots:
        if root.scope == SCOPE_GROUP and env.path.startswith(root.path.rstrip(os.sep) + os.sep):
            return root.path
    return None
