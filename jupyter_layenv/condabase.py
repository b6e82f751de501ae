"""Conda bases: validating a request for a new Conda env, placing it, and the hint when there is none yet.

The service calls this for ``POST environments {"kind": "conda", …}``; the build itself is :mod:`.create.conda`.
Channels, platform and package cache come from the service's configuration; a request only names packages
(Conda match specs, parsed by py-rattler) and, optionally, a root. Nothing here writes to disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import fsread
from .create.conda import KIND, CondaPlan
from .locators.conda import parse_condarc_list
from .model import CONDA_BASE, CONDA_ENV, Discovered
from .policy import USER_ROOT_ID, PolicyError, bad_request, refused_by, validate_name

CONDA_FIELDS = {"kind", "name", "packages", "ipykernel", "root"}
FIRST_BASE = ("python=3.11", "ipykernel")
_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]*", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class CondaRequest:
    name: str
    specs: tuple[str, ...]
    ipykernel: bool
    root: str = USER_ROOT_ID


def is_conda_request(body: Any) -> bool:
    return isinstance(body, dict) and body.get("kind") == KIND


def parse_request(body: dict[str, Any], max_packages: int) -> CondaRequest:
    """A POST body for a Conda env, every field checked; every package a Conda match spec."""
    unknown = sorted(set(body) - CONDA_FIELDS)
    if unknown:
        raise bad_request(
            f"unknown field(s) {', '.join(unknown)} for a Conda env: allowed are {', '.join(sorted(CONDA_FIELDS))} "
            "(channels come from the server's configuration)"
        )
    name = validate_name(body.get("name"))
    packages = body.get("packages")
    if not isinstance(packages, list) or not packages or not all(isinstance(p, str) for p in packages):
        raise bad_request('\'packages\' must be a non-empty list of Conda match specs like ["python=3.11", "numpy"]')
    if len(packages) > max_packages:
        raise bad_request(f"{len(packages)} package specs: at most {max_packages} per request")
    ipykernel = body.get("ipykernel", True)
    if not isinstance(ipykernel, bool):
        raise bad_request("'ipykernel' must be true or false (a JSON boolean)")
    root = body.get("root", USER_ROOT_ID)
    if not isinstance(root, str) or not root:
        raise bad_request('\'root\' must be the id of a root from GET policy, like "user" or "group:physics"')
    specs = [parse_match_spec(spec, f"package {number}") for number, spec in enumerate(packages, start=1)]
    return CondaRequest(name, tuple(dict.fromkeys(specs)), ipykernel, root)


def parse_match_spec(text: str, where: str) -> str:
    """One Conda match spec (``python=3.11``, ``numpy >=1.26``), in rattler's canonical form; no channel, no URL."""
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    spec = text.strip()
    if not spec or len(spec) > 300 or _CONTROL.search(spec):
        raise bad_request(f"{where}: {text!r} is not a Conda match spec; write it like 'python=3.11' or 'numpy>=1.26'")
    if "://" in spec or spec.startswith(("/", ".", "~")):
        raise bad_request(f"{where}: {spec!r} is a URL or path; name a package of the configured channels", "url")
    try:
        match = MatchSpec(spec)
    except InvalidMatchSpecError as err:
        reason = str(err).splitlines()[0]
        raise bad_request(
            f"{where}: {spec!r} is not a Conda match spec ({reason}); write it like 'python=3.11', "
            "'numpy>=1.26' or 'scipy=1.13=*_0'",
            "not a match spec",
        ) from None
    if match.channel is not None or "::" in spec:
        raise bad_request(
            f"{where}: {spec!r} names a channel; channels are set by the administrator "
            "(LayenvService.conda_channels): write just the package",
            "channel in spec",
        )
    if match.subdir is not None:
        raise bad_request(f"{where}: {spec!r} names a platform; the platform is set by the administrator", "subdir")
    if not _NAME.fullmatch(match.name.normalized or ""):
        raise bad_request(f"{where}: {spec!r} does not name a package (like 'numpy')", "not a match spec")
    return str(match)


def spec_names(specs: Iterable[str]) -> set[str]:
    return {str(spec).split(" ", 1)[0].split("[", 1)[0].lower() for spec in specs}


def condarc_values(paths: Iterable[str], key: str) -> list[str]:
    """A list setting (``channels``, ``envs_dirs``, ``pkgs_dirs``) from every .condarc conda reads, in order."""
    values: list[str] = []
    for path in paths:
        path = fsread.expand(path)
        if path.endswith(".d") or fsread.is_dir(path):
            names = sorted(n for n in fsread.listdir(path) if n.endswith((".yml", ".yaml")))
            texts = [fsread.read_small_text(os.path.join(path, name)) for name in names]
        else:
            texts = [fsread.read_small_text(path)]
        for text in texts:
            values.extend(parse_condarc_list(text or "", key))
    return list(dict.fromkeys(values))


def default_envs_dirs(condarc_paths: Iterable[str], environ: dict[str, str]) -> list[str]:
    """Where conda would create a named env, in conda's order: CONDA_ENVS_PATH, .condarc envs_dirs, ~/.conda/envs."""
    variables = ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS")
    from_env = [part for var in variables for part in environ.get(var, "").split(os.pathsep) if part]
    candidates = [*from_env, *condarc_values(condarc_paths, "envs_dirs"), "~/.conda/envs"]
    return list(dict.fromkeys(fsread.expand(path) for path in candidates))


def check_right(allowed: bool) -> None:
    if not allowed:
        raise refused_by("allow_conda_create", "creating Conda environments (bases) is not allowed on this server")


def make_plan(
    request: CondaRequest,
    *,
    path: str,
    channels: Iterable[str],
    platform: str,
    pkgs_dir: str | None,
    creator: str,
    group_gid: int | None,
) -> CondaPlan:
    specs = list(request.specs)
    if request.ipykernel and "ipykernel" not in spec_names(specs):
        specs.append("ipykernel")  # every created env is a kernel at once
    channels = tuple(channels)
    if not channels:
        raise PolicyError(500, "no Conda channel configured: set LayenvService.conda_channels", "no channel")
    return CondaPlan(
        name=request.name,
        path=path,
        specs=tuple(specs),
        requested=request.specs,
        ipykernel=request.ipykernel,
        channels=channels,
        platform=platform,
        pkgs_dir=pkgs_dir,
        creator=creator,
        group_gid=group_gid,
    )


def has_conda_env(discovered: Discovered) -> bool:
    return any(env.kind in (CONDA_BASE, CONDA_ENV) for env in discovered.environments)


def first_base_hint(cli: bool) -> str:
    """What to do on a machine with no Conda env, in the words of where it is shown."""
    specs = " ".join(FIRST_BASE)
    if cli:
        how = f"`jupyter layenv create base --conda {specs}`"
    else:
        body = {"kind": "conda", "name": "base", "packages": list(FIRST_BASE)}
        how = f'the panel\'s "A Conda base" (POST environments {json.dumps(body)})'
    return (
        "No Conda environment found, so there is no base to build a layer on. Create a first base with "
        f"{how}: jupyter_layenv solves and installs it from the configured channels with py-rattler, no conda needed"
    )
