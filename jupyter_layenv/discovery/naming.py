"""Names, display chains and stable ids of the built envs, and the Environment each proto becomes."""

from __future__ import annotations

import functools
import hashlib
import os
import re

from ..model import (
    CONDA_BASE,
    CONDA_ENV,
    LAYERED,
    VENV,
    Environment,
)
from .proto import Proto

_GENERIC_VENV_NAMES = {".venv", "venv", ".env", "env", ".virtualenv"}
_SLUG = re.compile(r"[^a-z0-9._-]+")


def _prompt(pyvenv: dict[str, str]) -> str | None:
    """``prompt`` of a pyvenv.cfg (``python -m venv --prompt`` quotes it: ``prompt = 'My Project'``)."""
    prompt = pyvenv.get("prompt", "").strip()
    if len(prompt) >= 2 and prompt[0] == prompt[-1] and prompt[0] in "'\"":
        prompt = prompt[1:-1].strip()
    return prompt or None


def _venv_name(path: str) -> str:
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


def _assign_ids(protos: list[Proto], previous: dict[str, tuple[Proto, Environment]]) -> list[Environment]:
    """Stable ids from identity (base name + env name); a collision gets a short hash of the path."""
    ids_by_path: dict[str, str] = {}
    for round_kinds in ((CONDA_BASE, CONDA_ENV, VENV), (LAYERED,)):
        batch = [proto for proto in protos if proto.kind in round_kinds]
        wanted = {proto.path: _identity(proto, ids_by_path) for proto in batch}
        counts: dict[str, int] = {}
        for identity in wanted.values():
            counts[identity] = counts.get(identity, 0) + 1
        for path, identity in wanted.items():
            if counts[identity] > 1:
                identity = f"{identity}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"
            ids_by_path[path] = identity
    chains = _distinct_chains(protos)
    environments = []
    for proto in protos:
        env_id, chain = ids_by_path[proto.path], chains[proto.path]
        cached = previous.get(proto.path)
        if cached is None or cached[0] is not proto or cached[1].id != env_id or cached[1].chain != chain:
            cached = (proto, _environment(proto, env_id, chain))
            previous[proto.path] = cached
        environments.append(cached[1])
    for gone in set(previous) - set(ids_by_path):
        del previous[gone]
    return sorted(environments, key=lambda env: (env.base or env.path, env.path))


def _distinct_chains(protos: list[Proto]) -> dict[str, tuple[str, ...]]:
    """Display chains, the first name qualified by its install (or folder) where two envs share it.

    Two installs with an env ``py311`` each: ``miniforge3/py311`` and ``anaconda3/py311``, and their layers
    ``miniforge3/py311 ▸ exp``.
    """
    by_path = {proto.path: proto for proto in protos}
    heads: dict[str, int] = {}
    for proto in protos:
        if len(proto.chain) == 1:
            heads[proto.chain[0]] = heads.get(proto.chain[0], 0) + 1
    chains = {}
    for proto in protos:
        chain = proto.chain
        head = proto if len(chain) == 1 else by_path.get(proto.base)
        if head is not None and heads.get(chain[0], 0) > 1:
            where = head.conda_root or os.path.dirname(head.path)
            chain = (f"{os.path.basename(where.rstrip(os.sep))}/{chain[0]}", *chain[1:])
        chains[proto.path] = chain
    return chains


def _environment(proto: Proto, env_id: str, chain: tuple[str, ...]) -> Environment:
    facts = proto.facts
    return Environment(
        id=env_id,
        name=proto.name,
        path=proto.path,
        dir_id=facts.dir_id,
        kind=proto.kind,
        base=proto.base,
        python=facts.python,
        python_version=proto.version,
        scope=proto.scope,
        writable=facts.writable,
        owner_uid=facts.owner_uid,
        owner_gid=facts.owner_gid,
        creator=facts.creator,
        has_ipykernel=proto.has_ipykernel,
        inherits_base=proto.inherits,
        conda_root=proto.conda_root,
        conda_env_name=proto.conda_env_name,
        chain=chain,
        shipped_kernels=facts.kernels,
        ipykernel_resources=proto.ipykernel_resources,
        activation=proto.activation,
        skipped_reason=_not_a_kernel_reason(proto),
        is_server_prefix=proto.is_server_prefix,
        display_name=facts.display_name,
    )


def _not_a_kernel_reason(proto: Proto) -> str | None:
    facts = proto.facts
    if facts.python is None:
        if facts.python_problem:
            return f"broken interpreter: {facts.python_problem}; recreate the environment"
        return "no Python interpreter in this environment" if not facts.kernels else None
    if proto.has_ipykernel:
        return None
    install = f"`{facts.python} -m pip install ipykernel`"
    if proto.kind in (CONDA_BASE, CONDA_ENV):
        return f"no ipykernel: run {install} (or conda install ipykernel), or create a layer on it with inherit"
    if proto.kind == LAYERED and not proto.inherits:
        return f"no ipykernel: run {install}; this layer does not inherit its base's packages"
    return f"no ipykernel: run {install}"
