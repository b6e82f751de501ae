"""What a change to a layer installs and removes, decided against its base before anything is written.

A layer is faithful to its base: the resolver sees everything visible to the layer's Python (the base's
distributions, then the layer's own) as installed and pinned, so a dependency the base satisfies stays the
base's. Only what nothing provides is installed, with ``--no-deps``. A package the request names explicitly in a
version the base does not have is an intended override (shadow, reason ``requested``). A dependency that needs
another version of something the base (or the layer) has is a conflict: the plan fails, nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..inventory import TOOLING, Dist
from .installed import Installed


class PlanError(Exception):
    """A plan that cannot be carried out: ``status`` 409 for a conflict a person resolves, 400 for bad input."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Pin:
    """One exact distribution to install (or locked in a revision), with what the resolver knew about it."""

    name: str
    version: str
    hashes: tuple[str, ...] = ()
    url: str | None = None
    via: tuple[str, ...] = ()  # who needs it, as the resolver says ("-r …" for the request itself)
    requires: tuple[str, ...] = ()  # the names it depends on, where the resolver gives them

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def requirement(self) -> str:
        return f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"

    def lock_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.hashes:
            entry["hashes"] = list(self.hashes)
        if self.url:
            entry["url"] = self.url
        return entry


@dataclass(frozen=True)
class Shadow:
    name: str
    version: str
    base_version: str
    reason: str  # "requested" | "duplicate" | "dependency"

    def json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "base_version": self.base_version, "reason": self.reason}


@dataclass(frozen=True)
class LayerState:
    """What the layer's Python sees: ``base`` (empty without inherit) under ``layer``."""

    python: str
    base: dict[str, Installed]
    layer: dict[str, Installed]

    def visible(self, removed: Iterable[str] = ()) -> dict[str, Installed]:
        gone = set(removed)
        return {**self.base, **{k: v for k, v in self.layer.items() if k not in gone}}


@dataclass(frozen=True)
class LayerPlan:
    install: tuple[Pin, ...] = ()
    remove: tuple[Dist, ...] = ()
    shadow: tuple[Shadow, ...] = ()
    kept_from_base: tuple[Dist, ...] = ()
    requested: tuple[str, ...] = field(default=())  # canonical names the request named explicitly

    def json(self) -> dict[str, Any]:
        """The dry-run answer of the contract."""
        return {
            "install": [{"name": p.name, "version": p.version} for p in self.install],
            "remove": [{"name": d.name, "version": d.version} for d in self.remove],
            "shadow": [s.json() for s in self.shadow],
            "kept_from_base": [{"name": d.name, "version": d.version} for d in self.kept_from_base],
        }


def _satisfied(req: Requirement, version: str) -> bool:
    return req.url is None and req.specifier.contains(version, prereleases=True)


def overrides(specs: Iterable[str], base: dict[str, Dist]) -> list[tuple[Requirement, Dist]]:
    """The explicitly requested packages the base has in a version the request does not accept."""
    found = []
    for spec in specs:
        req = Requirement(spec)
        dist = base.get(canonicalize_name(req.name))
        if dist is not None and not _satisfied(req, dist.version):
            found.append((req, dist))
    return found


def _runtime_requires(installed: Installed) -> set[str]:
    """The names a distribution needs at run time (markers evaluated for this Python, no extras)."""
    marker_env = {**default_environment(), "extra": ""}
    return {
        canonicalize_name(req.name)
        for req in installed.requires()
        if req.marker is None or req.marker.evaluate(marker_env)  # type: ignore[arg-type]
    }


def check_removal(state: LayerState, names: Iterable[str], force: bool) -> tuple[Dist, ...]:
    """The layer distributions to remove; refused when they are the base's, absent, or needed (unless ``force``)."""
    removing: dict[str, Dist] = {}
    for name in names:
        key: str = canonicalize_name(name)
        if key in state.layer:
            removing[key] = state.layer[key].dist
        elif key in state.base:
            raise PlanError(f"{name} is the base's, not this layer's: a layer cannot remove what its base provides")
        else:
            raise PlanError(f"{name} is not installed in this layer", 404)
    if not force:
        for key, dist in removing.items():
            needed_by = sorted(
                other.dist.name
                for other_key, other in state.layer.items()
                if other_key not in removing and key in _runtime_requires(other)
            )
            if needed_by:
                raise PlanError(
                    f"{dist.name} is needed by {', '.join(needed_by)} in this layer: remove those too, "
                    "or force the removal"
                )
    return tuple(removing.values())


class Resolver:
    """How a plan asks for versions: ``resolve`` returns the pins of a request under constraints, or raises
    :class:`ResolveFailed`. A resolver may leave out what is installed already (pip does)."""

    async def resolve(
        self, python: str, requirements: list[str], constraints: list[str], installed: dict[str, Installed]
    ) -> list[Pin]:
        raise NotImplementedError


class ResolveFailed(Exception):
    """The resolver found no solution; the message is its own explanation."""


async def plan_change(
    state: LayerState, resolver: Resolver, add: Iterable[str] = (), remove: Iterable[str] = (), force: bool = False
) -> LayerPlan:
    """Plan adding ``add`` (PEP 508 specs) and removing ``remove`` (names) in a layer."""
    specs = list(dict.fromkeys(add))
    removing = check_removal(state, remove, force)
    visible = state.visible(d.key for d in removing)
    requests = [Requirement(spec) for spec in specs]
    requested = tuple(dict.fromkeys(canonicalize_name(req.name) for req in requests))
    released: set[str] = {
        key
        for req in requests
        if (key := canonicalize_name(req.name)) in visible and not _satisfied(req, visible[key].dist.version)
    }
    if not specs:
        return LayerPlan(remove=removing, requested=requested)
    pinned = {key: item for key, item in visible.items() if key not in released}
    constraints = [f"{item.dist.name}=={item.dist.version}" for item in pinned.values()]
    try:
        pins = await resolver.resolve(state.python, specs, constraints, visible)
    except ResolveFailed as failure:
        raise await _conflict(state, resolver, specs, visible, released, failure) from None
    return _classify(state, pins, removing, requested)


def _resolver_error(what: str, failure: ResolveFailed) -> PlanError:
    """``what`` and the resolver's own headline on the first line (the one the panel and the CLI show), with the
    first line of its cause when it gives one (uv: "No solution found…" says nothing of which package or why;
    "Because iniconfg was not found in the provided package locations…" does), its explanation below."""
    headline, _, rest = str(failure).partition("\n")
    headline = headline.strip().removeprefix("error:").strip()
    cause = next((line.strip() for line in rest.splitlines() if line.strip().lower().startswith("cause:")), "")
    if cause:
        headline = f"{headline}: {cause[len('cause:') :].strip()}" if headline else cause[len("cause:") :].strip()
    return PlanError(f"{what}: {headline}\n{rest}" if headline else f"{what}\n{rest}")


async def _conflict(
    state: LayerState,
    resolver: Resolver,
    specs: list[str],
    visible: dict[str, Installed],
    released: set[str],
    failure: ResolveFailed,
) -> PlanError:
    """Why the pinned resolution failed: resolved again unpinned, which installed versions it would replace."""
    try:
        free = await resolver.resolve(state.python, specs, [], visible)
    except ResolveFailed as err:
        return _resolver_error("the packages cannot be installed (no versions satisfy the request)", err)
    conflicts = [
        pin
        for pin in free
        if pin.key in visible and pin.key not in released and pin.version != visible[pin.key].dist.version
    ]
    if not conflicts:
        return _resolver_error("the packages cannot be installed with what the base provides", failure)
    by_requirer = {pin.key: pin for pin in free}
    parts = []
    for pin in conflicts:
        have = visible[pin.key].dist
        owner = "this layer" if pin.key in state.layer else "the base"
        needs = [name for name in pin.via if not name.startswith("-r")] or [
            other.name for other in by_requirer.values() if pin.key in other.requires
        ]
        who = ", ".join(needs) or "the request"
        parts.append(
            f"{who} needs {have.name} {pin.version}, but {owner} has {have.name} {have.version}: pick another base, "
            f"or name it explicitly (e.g. '{have.name}=={pin.version}') to override it in this layer"
        )
    return PlanError("; ".join(parts))


def _classify(
    state: LayerState,
    pins: list[Pin],
    removing: tuple[Dist, ...],
    requested: tuple[str, ...],
) -> LayerPlan:
    gone = {d.key for d in removing}
    install: list[Pin] = []
    shadow: list[Shadow] = []
    kept: dict[str, Dist] = {}
    for pin in pins:
        in_layer = state.layer.get(pin.key) if pin.key not in gone else None
        in_base = state.base.get(pin.key)
        if in_layer is not None and in_layer.dist.version == pin.version and pin.url is None:
            continue
        if in_layer is None and in_base is not None and in_base.dist.version == pin.version and pin.url is None:
            kept[pin.key] = in_base.dist
            continue
        install.append(pin)
        if in_base is not None:
            reason = "requested" if pin.key in requested else "dependency"
            shadow.append(Shadow(pin.name, pin.version, in_base.dist.version, reason))
    installing = {pin.key for pin in install}
    wanted = {*requested, *(name for pin in install for name in pin.requires)}
    for key in wanted:
        base = state.base.get(key)
        if base is not None and key not in installing and key not in state.layer and key not in TOOLING:
            kept.setdefault(key, base.dist)
    return LayerPlan(
        install=tuple(install),
        remove=removing,
        shadow=tuple(shadow),
        kept_from_base=tuple(sorted(kept.values(), key=lambda d: d.key)),
        requested=requested,
    )
