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
from typing import TYPE_CHECKING, Any

from traitlets import List, Unicode, default
from traitlets.config import LoggingConfigurable

from . import fsread
from .create.conda import KIND, CondaPlan
from .locators.conda import parse_condarc_list
from .model import CONDA_BASE, CONDA_ENV, SCOPE_GROUP, SCOPE_USER, Discovered
from .namecase import case_refusal
from .policy import USER_ROOT_ID, PolicyError, bad_request, read_only_mount_words, refused_by, validate_name
from .unlisted import unseen_conda_dir

if TYPE_CHECKING:
    from .kernelspecs import LayenvKernelSpecManager
    from .policy import CreateRoot, LayenvPolicy
    from .quota import Quotas

CONDA_FIELDS = {"kind", "name", "packages", "ipykernel", "root"}
FIRST_BASE = ("python=3.11", "ipykernel")
FIRST_BASE_NAME = "py311"  # not "base": that is conda's name for its install root
RESERVED_NAMES = ("base", "root")  # conda's names for its install root; `conda create -n base` is refused
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
    if name in RESERVED_NAMES:
        raise bad_request(
            f"'{name}' is what conda calls its install root (`conda activate {name}` goes there, and conda refuses to "
            f"create an env of that name): pick another name, like {FIRST_BASE_NAME}",
            "invalid name",
        )
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


def first_base_hint(where: str) -> str:
    """What to do on a machine with no Conda env, in the words of where it is shown: ``cli``, ``rest``, ``log``."""
    specs = " ".join(f"--conda {spec}" for spec in FIRST_BASE)
    command = f"`jupyter layenv create {FIRST_BASE_NAME} {specs}`"
    body = {"kind": "conda", "name": FIRST_BASE_NAME, "packages": list(FIRST_BASE)}
    request = f"POST environments {json.dumps(body)}"
    how = {"cli": command, "rest": request, "log": f"{command} in a terminal, or {request}"}[where]
    return (
        "No Conda environment found, so there is no base to build a layer on. Create a first base with "
        f"{how}: jupyter_layenv solves and installs it from the configured channels with py-rattler, no conda needed"
    )


class CondaBases(LoggingConfigurable):
    """The Conda-env side of :class:`~jupyter_layenv.service.LayenvService`: its settings (configured as
    ``LayenvService.conda_*``) and the placing of a new Conda env. Uses the service's roots, policy and jobs."""

    if TYPE_CHECKING:  # what the service gives this part of it
        ksm: LayenvKernelSpecManager
        policy: LayenvPolicy
        quotas: Quotas

        def create_roots(self, discovered: Discovered) -> list[CreateRoot]: ...

        def _create_root(
            self, discovered: Discovered, create_roots: list[CreateRoot], wanted: str, *, in_user_root: bool = True
        ) -> CreateRoot: ...

    conda_channels = List(
        Unicode(),
        config=True,
        help="Channels new Conda envs are solved from: names (conda-forge) or URLs (a mirror, file:///srv/channel). "
        "Default: the channels of the .condarc files conda reads, else conda-forge. Never from a request.",
    )
    conda_platform = Unicode(
        config=True, help="The platform (subdir) of new Conda envs, e.g. linux-64 (default: this machine's)."
    )
    conda_pkgs_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="py-rattler's package cache (default: the first pkgs_dirs of .condarc, else rattler's own cache).",
    )
    conda_envs_dir = Unicode(
        config=True,
        help="Where new Conda envs go (default: the first writable of CONDA_ENVS_PATH, the envs_dirs of .condarc, "
        "~/.conda/envs: where conda itself creates named envs).",
    )

    @default("conda_channels")
    def _default_conda_channels(self) -> list[str]:
        return condarc_values(self.ksm.condarc_paths, "channels") or ["conda-forge"]

    @default("conda_platform")
    def _default_conda_platform(self) -> str:
        import rattler

        return str(rattler.Platform.current())

    @default("conda_pkgs_dir")
    def _default_conda_pkgs_dir(self) -> str | None:
        return next(iter(condarc_values(self.ksm.condarc_paths, "pkgs_dirs")), None)

    @default("conda_envs_dir")
    def _default_conda_envs_dir(self) -> str:
        candidates = default_envs_dirs(self.ksm.condarc_paths, dict(os.environ))
        return next((path for path in candidates if can_make_in(path)), candidates[-1])

    def plan_conda(self, body: dict[str, Any], creator: str) -> CondaPlan:
        """A Conda env in the user's Conda envs dir or a group root; refusals raise and write nothing (blocking)."""
        check_right(self.policy.allow_conda_create)
        request = parse_request(body, self.policy.max_packages)
        self.policy.check_names(spec_names(request.specs))
        discovered, _ = self.ksm.current()
        create_roots = self.create_roots(discovered)
        # the user's Conda env goes to the Conda envs dir (checked below), not the layers' root, which may be
        # read-only while ~/.conda/envs is not (as GET policy's ``conda`` says); a group's goes into the group root
        where = self._create_root(discovered, create_roots, request.root, in_user_root=False)
        self.quotas.check(discovered, create_roots)  # the same quotas as a layer's create: sizes too
        root = fsread.expand(self.conda_envs_dir) if where.scope == SCOPE_USER else where.path
        if where.scope == SCOPE_USER and not can_make_in(root):
            mounted = read_only_mount_words(root if os.path.isdir(root) else os.path.dirname(root), "created")
            unwritable = f"{root} (LayenvService.conda_envs_dir) is not writable for this server's user"
            raise PolicyError(403, mounted or unwritable, "read-only root")
        path = os.path.join(root, request.name)
        if os.path.lexists(path) or any(env.path == path for env in discovered.environments):
            raise PolicyError(409, f"{path} exists already; pick another name or delete it first", "exists")
        if (twin := case_refusal(path)) is not None:
            raise twin
        if (unseen := self.unseen(root)) is not None:  # it would be built, then found unlisted and removed
            raise PolicyError(500, f"{path} would not be listed, so it is not built: {unseen}", "not listed")
        return make_plan(
            request,
            path=path,
            channels=self.conda_channels,
            platform=self.conda_platform,
            pkgs_dir=fsread.expand(self.conda_pkgs_dir) if self.conda_pkgs_dir else None,
            creator=creator,
            group_gid=os.stat(where.path).st_gid if where.scope == SCOPE_GROUP else None,
        )

    def unseen(self, envs_dir: str) -> str | None:
        """Why discovery would not list a Conda env made in ``envs_dir`` (``None``: it would)."""
        discovery = self.ksm.discovery
        return unseen_conda_dir(envs_dir, discovery.scanned(), discovery.config.environments_files)

    def conda_policy(self, create_refused: str | None, roots: list[dict[str, Any]]) -> dict[str, Any]:
        """GET policy's ``conda`` part: may this caller create a Conda env, where, from which channels.

        ``create_refused``: what refuses any create (read-only caller, quota); ``roots``: GET policy's roots."""
        refused = create_refused
        if refused is None and not self.policy.allow_conda_create:
            refused = f"creating Conda environments is not allowed on this server {_RULE}"
        envs_dir = fsread.expand(self.conda_envs_dir)
        unseen = self.unseen(envs_dir)
        in_user = SCOPE_USER in self.policy.create_in and can_make_in(envs_dir) and unseen is None
        in_group = any(root["can_create"] and root["scope"] == SCOPE_GROUP for root in roots)
        if refused is None and not in_user and not in_group:
            if SCOPE_USER not in self.policy.create_in:
                refused = "; ".join(dict.fromkeys(root["refused"] for root in roots if root["refused"]))
                refused = refused or "no root to create Conda environments in"
            elif unseen is not None:
                refused = f"a new Conda env in {envs_dir} would not be listed: {unseen}"
            else:
                refused = f"{envs_dir} (LayenvService.conda_envs_dir) is not writable for this server's user"
        return {
            "can_create": refused is None,
            "refused": refused,
            "channels": list(self.conda_channels),
            "platform": self.conda_platform,
            "envs_dir": fsread.expand(self.conda_envs_dir),
            "first_base": list(FIRST_BASE),
        }


_RULE = "(rule LayenvPolicy.allow_conda_create; ask your administrator to change it)"


def can_make_in(directory: str) -> bool:
    """Whether a directory, or the nearest existing one it would be made in, is writable."""
    path = directory
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.access(path, os.W_OK | os.X_OK)
