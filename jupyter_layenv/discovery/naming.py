"""Names, display chains and stable ids of the built envs, and the Environment each proto becomes."""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
from collections.abc import Iterable

from ..model import (
    CONDA_BASE,
    CONDA_ENV,
    LAYERED,
    Environment,
    require_field_order,
)
from .proto import Proto

_GENERIC_VENV_NAMES = {".venv", "venv", ".env", "env", ".virtualenv"}
_SLUG = re.compile(r"[^a-z0-9._-]+")


def venv_prompt(pyvenv: dict[str, str]) -> str | None:
    """``prompt`` of a pyvenv.cfg (``python -m venv --prompt`` quotes it: ``prompt = 'My Project'``)."""
    prompt = pyvenv.get("prompt", "").strip()
    if len(prompt) >= 2 and prompt[0] == prompt[-1] and prompt[0] in "'\"":
        prompt = prompt[1:-1].strip()
    return prompt or None


def venv_name(path: str) -> str:
    base = os.path.basename(path.rstrip(os.sep))
    if base in _GENERIC_VENV_NAMES:
        return os.path.basename(os.path.dirname(path.rstrip(os.sep))) or base
    return base


@functools.lru_cache(maxsize=8192)
def slug(text: str) -> str:
    return _SLUG.sub("_", text.lower()).strip("._-") or "env"


def layer_id(base_id: str, name: str) -> str:
    """The id a layer named ``name`` on the env ``base_id`` gets (unless two envs claim the same one)."""
    return f"{base_id}.{slug(name)}"


def _identity(proto: Proto, ids_by_path: dict[str, str]) -> str:
    kind = proto.kind
    if kind == CONDA_BASE:
        return "conda-base"
    if kind == CONDA_ENV:
        return f"conda-{slug(proto.name)}"
    if kind == LAYERED and proto.base in ids_by_path:
        return layer_id(ids_by_path[proto.base], proto.name)
    return f"venv-{slug(proto.name)}"


def _unique(identity: str, path: str, count: int) -> str:
    return identity if count == 1 else f"{identity}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


def _round(proto: Proto) -> int:
    """The round a proto's id is given in: a layer's (2) takes its base's, given in round 1."""
    return 2 if proto.kind == LAYERED else 1


def _order(env: Environment) -> tuple[str, str]:
    return (env.base or env.path, env.path)


class Naming:
    """Ids, display chains and Environments of the built protos, kept from one build to the next.

    Stable ids from identity (base name + env name), a collision getting a short hash of the path; layers are named
    after their base's id, so they get theirs second.

    A complete pass (``_full``) makes the index the updates go by, and reads the ids and chains off it. After a
    few protos changed (``_update``), only the envs whose id or chain they can change are looked at: those sharing
    an identity with them, their layers, and those sharing a chain head whose count crossed one.
    """

    def __init__(self) -> None:
        self.environments: dict[str, Environment] = {}
        self.made_from: dict[str, Proto] = {}  # the proto each of them was made from (a dict, not a tuple per env)
        self.protos: dict[str, Proto] = {}
        # The indexes below map a key to one path, or to a set of them when several share it (most keys have one
        # path: no set per env, fewer objects for the garbage collector); ``_add``, ``_discard`` and ``_members``.
        self.wanted: dict[str, str] = {}  # path -> the identity its id is made from, in its round (``_round``)
        # identity -> its holders, one dict per round (no (round, identity) tuple per env)
        self.holders: tuple[dict[str, str | set[str]], dict[str, str | set[str]]] = ({}, {})
        self.ids: dict[str, str] = {}
        self.layers_of: dict[str, str | set[str]] = {}  # base path -> the layers on it
        self.heads: dict[str, int] = {}  # first chain name -> how many one-name chains have it
        self.named: dict[str, str | set[str]] = {}  # first chain name -> every proto whose chain starts with it
        self.listed: list[Environment] = []  # the Environments sorted by ``_order`` (patched, not rebuilt)
        self.extra: set[str] = set()  # the bases records added (not candidates themselves)
        # the Environments the last call made and those it replaced or dropped (None: it was a complete pass)
        self.changes: tuple[list[Environment], list[Environment]] | None = None

    def assign(self, protos: list[Proto], extra: Iterable[str] = ()) -> tuple[Environment, ...]:
        by_path = {proto.path: proto for proto in protos}
        self.extra = set(extra)
        self.changes = ([], [])
        changed = [proto for proto in protos if self.protos.get(proto.path) is not proto]
        added = sum(1 for proto in changed if proto.path not in self.protos)
        gone = [path for path in self.protos if path not in by_path] if len(self.protos) + added > len(by_path) else []
        if not self.protos or len(changed) + len(gone) > 16:
            return self._full(protos, by_path)
        if changed or gone:
            self._update(changed, gone)
        return tuple(self.listed)

    def update(self, protos: dict[str, Proto], extra: list[Proto], touched: list[str]) -> tuple[Environment, ...]:
        """``assign`` after a build update: only the ``touched`` paths and the extra bases can differ."""
        known = self.protos
        extra_paths = {proto.path for proto in extra}
        self.changes = ([], [])
        changed = [proto for proto in extra if known.get(proto.path) is not proto]
        gone = [path for path in self.extra if path not in extra_paths and path not in protos]
        for path in touched:
            proto = protos.get(path)
            if proto is not None:
                if known.get(path) is not proto:
                    changed.append(proto)
            elif path in known and path not in extra_paths:
                gone.append(path)
        self.extra = extra_paths
        if len(changed) + len(gone) > 16:
            return self.assign([*protos.values(), *extra], extra_paths)
        if changed or gone:
            self._update(changed, list(dict.fromkeys(gone)))
        return tuple(self.listed)

    def _full(self, protos: list[Proto], by_path: dict[str, Proto]) -> tuple[Environment, ...]:
        """Ids and chains, and the index ``_update`` goes by, in one pass over the protos."""
        self.changes = None
        self.protos = by_path
        ids: dict[str, str] = {}
        heads: dict[str, int] = {}
        wanted_of: dict[str, str] = {}
        holders_by_round: tuple[dict[str, str | set[str]], dict[str, str | set[str]]] = ({}, {})
        layers_of: dict[str, str | set[str]] = {}
        named: dict[str, str | set[str]] = {}
        self.ids, self.heads, self.wanted, self.holders = ids, heads, wanted_of, holders_by_round
        self.layers_of, self.named = layers_of, named
        first, layers = [], []
        for proto in protos:
            path, chain = proto.path, proto.chain
            head = chain[0]
            _add(named, head, path)
            if len(chain) == 1:
                heads[head] = heads.get(head, 0) + 1
            if proto.kind == LAYERED:
                layers.append(proto)
                _add(layers_of, proto.base or "", path)
            else:
                first.append(proto)
        for round_, batch in ((1, first), (2, layers)):  # a layer's identity takes its base's id: set by round 2
            holders = holders_by_round[round_ - 1]
            wanted = {proto.path: _identity(proto, ids) for proto in batch}
            for path, identity in wanted.items():
                _add(holders, identity, path)
            for path, identity in wanted.items():
                found = holders[identity]
                ids[path] = identity if found.__class__ is str else _unique(identity, path, len(found))
            wanted_of.update(wanted)
        previous, made_from = self.environments, self.made_from
        environments: dict[str, Environment] = {}
        for proto in protos:
            path, chain = proto.path, proto.chain
            env_id = ids[path]
            if heads.get(chain[0], 0) > 1:  # else ``_chain`` leaves it as it is
                chain = self._chain(proto)
            env = previous.get(path)
            if env is None or made_from.get(path) is not proto or env.id != env_id or env.chain != chain:
                env = _environment(proto, env_id, chain)
            environments[path] = env
        self.environments = environments
        self.made_from = dict(by_path)  # not by_path itself: ``_update`` changes self.protos before ``_refresh``
        self.listed = sorted(environments.values(), key=_order)
        return tuple(self.listed)

    def _index(self, proto: Proto) -> None:
        if proto.kind == LAYERED:
            _add(self.layers_of, proto.base or "", proto.path)
        else:
            identity = _identity(proto, {})
            self.wanted[proto.path] = identity
            _add(self.holders[0], identity, proto.path)
        head = proto.chain[0]
        _add(self.named, head, proto.path)
        if len(proto.chain) == 1:
            self.heads[head] = self.heads.get(head, 0) + 1
        if proto.kind == LAYERED:  # its identity needs its base's id: set by _update, or by _full right after
            ids = {proto.base: self.ids[proto.base]} if proto.base in self.ids and self._first(proto.base) else {}
            identity = _identity(proto, ids)
            self.wanted[proto.path] = identity
            _add(self.holders[1], identity, proto.path)

    def _first(self, path: str) -> bool:
        proto = self.protos.get(path)
        return proto is not None and proto.kind != LAYERED

    def _unindex(self, proto: Proto) -> None:
        if proto.kind == LAYERED:
            _discard(self.layers_of, proto.base or "", proto.path)
        _discard(self.holders[_round(proto) - 1], self.wanted.pop(proto.path), proto.path)
        head = proto.chain[0]
        _discard(self.named, head, proto.path)
        if len(proto.chain) == 1:
            self.heads[head] -= 1
            if not self.heads[head]:
                del self.heads[head]

    def _update(self, changed: list[Proto], gone: list[str]) -> None:
        protos, ids = self.protos, self.ids
        touched_ids: set[tuple[int, str]] = set()
        heads_before: dict[str, int] = {}
        chains_of: set[str] = set()  # paths whose chain is looked at again
        for path in gone:
            old = protos.pop(path)
            heads_before.setdefault(old.chain[0], self.heads.get(old.chain[0], 0))
            touched_ids.add((_round(old), self.wanted[path]))
            self._unindex(old)
            ids.pop(path, None)
            chains_of.update(_members(self.layers_of, path))
        first = [proto for proto in changed if proto.kind != LAYERED]
        layers = [proto for proto in changed if proto.kind == LAYERED]
        for proto in changed:
            replaced = protos.get(proto.path)
            if replaced is not None:
                heads_before.setdefault(replaced.chain[0], self.heads.get(replaced.chain[0], 0))
                touched_ids.add((_round(replaced), self.wanted[proto.path]))
                self._unindex(replaced)
            heads_before.setdefault(proto.chain[0], self.heads.get(proto.chain[0], 0))
            protos[proto.path] = proto
            chains_of.add(proto.path)
            chains_of.update(_members(self.layers_of, proto.path))
        for proto in first:
            self._index(proto)
            touched_ids.add((1, self.wanted[proto.path]))
        moved = self._settle(touched_ids, 1)  # first-round ids, then the layers whose base's id moved (or base went)
        bases = moved.union(gone, (proto.path for proto in changed))
        rewanted = {proto.path for proto in layers}
        rewanted.update(layer for base in bases for layer in _members(self.layers_of, base))
        for path in rewanted:
            proto = protos[path]
            if path in self.wanted:  # an unchanged layer of a base whose id moved: indexed from this proto
                touched_ids.add((_round(proto), self.wanted[path]))
                _discard(self.holders[_round(proto) - 1], self.wanted.pop(path), path)
                _discard(self.named, proto.chain[0], path)  # _index adds it back
                if len(proto.chain) == 1:
                    self.heads[proto.chain[0]] -= 1
                _discard(self.layers_of, proto.base or "", path)
            self._index(proto)
            touched_ids.add((2, self.wanted[path]))
        moved |= self._settle(touched_ids, 2)
        for head, before in heads_before.items():
            if (before > 1) != (self.heads.get(head, 0) > 1):
                chains_of.update(_members(self.named, head))
        self._refresh(chains_of | moved, gone)

    def _settle(self, touched: set[tuple[int, str]], round_: int) -> set[str]:
        """The ids of every holder of a touched identity of this round; returns the paths whose id moved."""
        moved = set()
        for wanted in [wanted for wanted in touched if wanted[0] == round_]:
            holders = _members(self.holders[round_ - 1], wanted[1])
            for path in holders:
                env_id = _unique(wanted[1], path, len(holders))
                if self.ids.get(path) != env_id:
                    self.ids[path] = env_id
                    moved.add(path)
        return moved

    def _refresh(self, paths: set[str], gone: list[str]) -> None:
        """New Environments where proto, id or chain changed; the order follows."""
        environments, made_from, listed = self.environments, self.made_from, self.listed
        assert self.changes is not None  # set by assign/update before they refresh
        added, dropped = self.changes
        for path in gone:
            old = environments.pop(path, None)
            made_from.pop(path, None)
            if old is not None:
                _drop(listed, old)
                dropped.append(old)
        for path in paths:
            proto = self.protos.get(path)
            if proto is None:
                continue
            env_id, chain = self.ids[path], self._chain(proto)
            cached = environments.get(path)
            if cached is not None and made_from[path] is proto and cached.id == env_id and cached.chain == chain:
                continue
            if cached is not None:
                _drop(listed, cached)
                dropped.append(cached)
            env = _environment(proto, env_id, chain)
            environments[path] = env
            made_from[path] = proto
            listed.insert(bisect.bisect_right(listed, _order(env), key=_order), env)
            added.append(env)

    def _chain(self, proto: Proto) -> tuple[str, ...]:
        head = proto if len(proto.chain) == 1 else self.protos.get(proto.base or "")
        return _qualified(proto.chain, head, self.heads)


def _drop(listed: list[Environment], env: Environment) -> None:
    """Takes ``env`` out of the Environments sorted by ``_order``."""
    del listed[bisect.bisect_left(listed, _order(env), key=_order)]


def _add(index: dict, key: object, value: str) -> None:
    """``value`` joins the paths of ``key``: the first one alone, a set from the second on."""
    found = index.get(key)
    if found is None:
        index[key] = value
    elif found.__class__ is str:
        if found != value:
            index[key] = {found, value}
    else:
        found.add(value)


def _discard(index: dict, key: object, value: str) -> None:
    found = index.get(key)
    if found is None:
        return
    if found.__class__ is str:
        if found == value:
            del index[key]
        return
    found.discard(value)
    if not found:
        del index[key]


def _members(index: dict, key: object) -> tuple[str, ...] | set[str]:
    """The paths of ``key`` (none: an empty tuple)."""
    found = index.get(key)
    return () if found is None else (found,) if found.__class__ is str else found


def _qualified(chain: tuple[str, ...], head: Proto | None, heads: dict[str, int]) -> tuple[str, ...]:
    """``chain`` with its first name qualified by ``head``'s install (or folder) when ``heads`` counts it twice."""
    if head is not None and heads.get(chain[0], 0) > 1:
        where = head.conda_root or os.path.dirname(head.path)
        return (f"{os.path.basename(where.rstrip(os.sep))}/{chain[0]}", *chain[1:])
    return chain


# ``_environment`` passes Environment's fields by position (a keyword call costs a third more, per listed env)
_ENVIRONMENT_FIELDS = (
    "id",
    "name",
    "path",
    "dir_id",
    "kind",
    "base",
    "python",
    "python_version",
    "scope",
    "writable",
    "owner_uid",
    "has_ipykernel",
    "owner_gid",
    "creator",
    "inherits_base",
    "conda_root",
    "conda_env_name",
    "chain",
    "shipped_kernels",
    "ipykernel_resources",
    "activation",
    "skipped_reason",
    "is_server_prefix",
    "display_name",
)
require_field_order(Environment, _ENVIRONMENT_FIELDS, "naming._environment")


def _environment(proto: Proto, env_id: str, chain: tuple[str, ...]) -> Environment:
    facts = proto.facts
    return Environment(
        env_id,
        proto.name,
        proto.path,
        facts.dir_id,
        proto.kind,
        proto.base,
        facts.python,
        proto.version,
        proto.scope,
        facts.writable,
        facts.owner_uid,
        proto.has_ipykernel,
        facts.owner_gid,
        facts.creator,
        proto.inherits,
        proto.conda_root,
        proto.conda_env_name,
        chain,
        facts.kernels,
        proto.ipykernel_resources,
        proto.activation,
        _not_a_kernel_reason(proto),
        proto.is_server_prefix,
        facts.display_name,
    )


def _no_python(proto: Proto) -> str:
    """What to do about an env with no interpreter (an empty ``bin/``, a Conda env of other tools), as it reads."""
    if proto.kind in (CONDA_BASE, CONDA_ENV):
        install = f"`conda install -p {proto.path} python ipykernel`"
        return f"no Python interpreter in this environment: {install} makes it a kernel"
    return (
        f"no Python interpreter in this environment (no {proto.path}/bin/python): recreate it (e.g. `python -m venv "
        f"--clear {proto.path}`) or delete it"
    )


def _not_a_kernel_reason(proto: Proto) -> str | None:
    facts = proto.facts
    if facts.python is None:
        if facts.python_problem:
            return f"broken interpreter: {facts.python_problem}; recreate the environment"
        return None if facts.kernels else _no_python(proto)
    if proto.has_ipykernel:
        return None
    if not facts.writable:  # an administrator's base, another user's env: an install there is not this user's to do
        layer = ", or create a layer on it with inherit" if proto.kind in (CONDA_BASE, CONDA_ENV) else ""
        return f"no ipykernel, and it is read-only for you: ask its owner to install ipykernel into it{layer}"
    install = f"`{facts.python} -m pip install ipykernel`"
    if proto.kind in (CONDA_BASE, CONDA_ENV):
        return f"no ipykernel: run {install} (or conda install ipykernel), or create a layer on it with inherit"
    if proto.kind == LAYERED and not proto.inherits:
        return f"no ipykernel: run {install}; this layer does not inherit its base's packages"
    return f"no ipykernel: run {install}"
