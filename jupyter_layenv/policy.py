"""What a request may ask for, and who may do what where: names, package specs, bases, roots, quotas, deletes.

Every refusal is a :class:`PolicyError` whose message says what to change; a refusal by one of the
administrator's rules is a 403 that names the rule (``LayenvPolicy.<trait>``). Nothing here writes to disk
(callers refuse before they write), and nothing imports the server, so the CLI applies the same rules.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from traitlets import Bool, Enum, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from . import inuse
from .inuse import RunningKernel
from .inventory import Dist
from .layers.plan import overrides
from .model import CONDA_BASE, CONDA_ENV, SCOPE_GROUP, SCOPE_SYSTEM, SCOPE_USER, Discovered, Environment, kind_noun

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CREATE_FIELDS = {"name", "base", "packages", "requirements", "inherit", "display_name", "root"}
CHANGE_FIELDS = {"add", "remove", "dry_run", "force"}
PACKAGE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
USER_ROOT_ID = "user"
# The installer options a request may carry when the administrator allows them: requests only choose among
# these names; the flags passed to uv or pip are ours (see create/installers.py), never the request's text.
SAFE_INSTALLER_OPTIONS = ("--pre", "--no-deps")
BASE_KINDS = (CONDA_BASE, CONDA_ENV)
_HASH_OPTION = re.compile(r"\s+--hash[= ]\S+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INSTALLER_READS = re.compile(r"\s#|\$\{")  # what pip and uv treat specially in a requirements file


class PolicyError(Exception):
    """A refused request: HTTP ``status``, a ``message`` saying what to change, a short ``reason``, and details."""

    def __init__(self, status: int, message: str, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.details = details or {}  # more fields for the error JSON (a 422's closest bases)


def bad_request(message: str, reason: str = "bad input") -> PolicyError:
    return PolicyError(400, message, reason)


def refused_by(rule: str, message: str) -> PolicyError:
    """A 403 by one of the administrator's rules: the message names it, so a user knows whom to ask."""
    return PolicyError(403, f"{message} (rule LayenvPolicy.{rule}; ask your administrator to change it)", rule)


@dataclass(frozen=True)
class CreateRoot:
    """A place envs may be created in: the user root, or a group root the caller is a member of."""

    id: str
    scope: str
    path: str
    group: str | None
    writable: bool


@dataclass(frozen=True)
class ChangeRequest:
    """A validated ``POST environments/<id>/packages`` body."""

    add: tuple[str, ...]
    remove: tuple[str, ...]
    dry_run: bool
    force: bool
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreateRequest:
    """A validated POST body: every field checked, every package spec normalized."""

    name: str
    base: str
    requirements: tuple[str, ...]
    inherit: bool
    display_name: str | None
    root: str = USER_ROOT_ID
    options: tuple[str, ...] = ()


class LayenvPolicy(LoggingConfigurable):
    """Input validation and the administrator's rules: who may create what, where, and how much."""

    allow_direct_references = Bool(
        False,
        config=True,
        help="Allow PEP 508 direct references (`name @ https://…`, `name @ file:///…`) in package specs. "
        "Installer options (`-e`, `--index-url`…) are not: the index comes from configuration.",
    )
    allowed_installer_options = List(
        Enum(list(SAFE_INSTALLER_OPTIONS)),
        config=True,
        help="Installer options a request may put among its packages: '--pre' (allow pre-releases) and "
        "'--no-deps'. Any other option is always refused; the index and find-links come from configuration.",
    )
    max_packages = Int(200, config=True, help="Most package specs one create request may name.")
    allowed_bases = List(
        Unicode(),
        ["*"],
        config=True,
        help="Globs of the bases users may build layers on, matched against a base's id and its path "
        "(e.g. ['conda-torch*', '/opt/conda/envs/*']).",
    )
    create_in = List(
        Enum([SCOPE_USER, SCOPE_GROUP]),
        [SCOPE_USER, SCOPE_GROUP],
        config=True,
        help="Where users may create envs: 'user' (their own root), 'group' (group roots they are members of). "
        "System roots are never written.",
    )
    max_envs_per_user = Int(
        0,
        config=True,
        help="Most envs a user may own in the user and group roots, counting queued and running creates (0: no limit).",
    )
    allowed_packages = List(
        Unicode(),
        config=True,
        help="Globs of the package names a create may install (e.g. ['numpy', 'scikit-*']); empty: any.",
    )
    denied_packages = List(
        Unicode(), config=True, help="Globs of package names a create may never install; wins over allowed_packages."
    )
    allow_conda_create = Bool(
        True,
        config=True,
        help="Users may create Conda envs (bases) with py-rattler, from LayenvService.conda_channels, in their "
        "Conda envs dir and the group roots create_in allows. Turn off to let only the administrator provide bases.",
    )
    max_jobs = Int(0, config=True, help="Most create jobs queued or running on this server at once (0: no limit).")
    max_bytes_per_user = Int(
        0,
        config=True,
        help="Most bytes a user's envs in the user and group roots may hold of their own (size_bytes; files "
        "hard-linked from a package cache are not counted) before a create is refused (0: no limit).",
    )
    protected_packages = List(
        Unicode(),
        config=True,
        help="Globs of base packages a layer may never override with another version (e.g. ['numpy', 'torch*']): "
        "a request naming one in a version its base does not have is refused. Empty: any may be overridden.",
    )

    def parse_create(self, body: Any) -> CreateRequest:
        if not isinstance(body, dict):
            raise bad_request('send a JSON object like {"name": "myexp", "base": "conda-py311_ai"}')
        unknown = sorted(set(body) - CREATE_FIELDS)
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(sorted(CREATE_FIELDS))}")
        name = validate_name(body.get("name"))
        base = body.get("base")
        if not isinstance(base, str) or not base.strip():
            raise bad_request("'base' is required: the id or path of a Conda environment (see GET environments)")
        if base != base.strip():
            raise bad_request(f"'base' {base!r} has whitespace around it: send the id or path exactly as listed")
        inherit = body.get("inherit", True)
        if not isinstance(inherit, bool):
            raise bad_request("'inherit' must be true or false (a JSON boolean, not a string or number)")
        packages = body.get("packages", [])
        if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
            raise bad_request('\'packages\' must be a list of strings like ["flask==3.0.3", "requests"]')
        text = body.get("requirements", "")
        if not isinstance(text, str):
            raise bad_request("'requirements' must be the text of a requirements.txt file (a string)")
        root = body.get("root", USER_ROOT_ID)
        if not isinstance(root, str) or not root:
            raise bad_request('\'root\' must be the id of a root from GET policy, like "user" or "group:physics"')
        display_name = body.get("display_name")
        if display_name is not None and (
            not isinstance(display_name, str)
            or not display_name.strip()
            or len(display_name) > 128
            or _CONTROL.search(display_name)
        ):
            raise bad_request("'display_name' must be a non-empty string of at most 128 printable characters")
        lines = [*((spec, "packages") for spec in packages), *self.requirements_lines(text)]
        options = [self.parse_option(line, where) for line, where in lines if _is_option(line)]
        specs = [self.parse_spec(line, where) for line, where in lines if not _is_option(line)]
        if len(specs) > self.max_packages:
            raise bad_request(f"{len(specs)} package specs: at most {self.max_packages} per request")
        self.check_packages(specs)
        return CreateRequest(
            name,
            base,
            tuple(dict.fromkeys(specs)),
            inherit,
            display_name,
            root,
            tuple(dict.fromkeys(options)),
        )

    def parse_change(self, body: Any) -> ChangeRequest:
        """Add and remove lists validated as a create's packages are; at least one of them not empty."""
        if not isinstance(body, dict):
            raise bad_request('send a JSON object like {"add": ["flask==3.0.3"], "remove": ["requests"]}')
        unknown = sorted(set(body) - CHANGE_FIELDS)
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(sorted(CHANGE_FIELDS))}")
        add, remove = body.get("add", []), body.get("remove", [])
        if not isinstance(add, list) or not all(isinstance(p, str) for p in add):
            raise bad_request('\'add\' must be a list of package specs like ["flask==3.0.3", "requests"]')
        if not isinstance(remove, list) or not all(isinstance(p, str) for p in remove):
            raise bad_request("'remove' must be a list of package names like [\"requests\"]")
        for flag in ("dry_run", "force"):
            if not isinstance(body.get(flag, False), bool):
                raise bad_request(f"'{flag}' must be true or false (a JSON boolean)")
        options = [self.parse_option(spec, "add") for spec in add if _is_option(spec)]
        specs = [self.parse_spec(spec, "add") for spec in add if not _is_option(spec)]
        names = []
        for name in remove:
            if not PACKAGE_NAME.fullmatch(name.strip()):
                raise bad_request(f"remove: {name!r} is not a package name; write it like 'requests'", "bad name")
            names.append(name.strip())
        if not specs and not names:
            raise bad_request("nothing to change: name packages to 'add' or to 'remove'")
        if len(specs) + len(names) > self.max_packages:
            raise bad_request(f"{len(specs) + len(names)} packages: at most {self.max_packages} per request")
        self.check_packages(specs)
        return ChangeRequest(tuple(dict.fromkeys(specs)), tuple(dict.fromkeys(names)), body.get("dry_run", False),
                             body.get("force", False), tuple(dict.fromkeys(options)))  # fmt: skip

    def change_refusal(self, env: Environment, uid: int, *, name: str | None = None) -> PolicyError | None:
        """Why the packages of ``env`` may not be changed here (only the caller's own writable layers and venvs);
        ``name``: how to call ``env`` (``Discovered.label``)."""
        who = name or env.name
        if env.kind in BASE_KINDS:
            return PolicyError(
                403, f"{who} is a Conda environment: jupyter_layenv changes only layers and venvs", "conda env"
            )
        if env.is_server_prefix:
            return PolicyError(403, f"{who} is the environment this Jupyter server runs in", "server env")
        if env.scope == SCOPE_SYSTEM:
            return PolicyError(403, f"{who} is a system environment: ask its owner or your administrator", "system")
        if uid != 0 and env.owner_uid != uid and env.scope != SCOPE_GROUP:
            return PolicyError(403, f"{who} belongs to another user (uid {env.owner_uid})", "not yours")
        mounted = read_only_mount_words(os.path.dirname(env.path), "changed")  # now: a listing may predate a remount
        if mounted or not env.writable:
            return PolicyError(403, mounted or f"{who} is read-only for this server's user", "read-only")
        return None

    def requirements_lines(self, text: str) -> list[tuple[str, str]]:
        """The lines of a requirements.txt that say something, with where each was; continuations refused."""
        lines = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("#"):
                continue
            line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
            line = _HASH_OPTION.sub("", line).strip()  # a lock's pins: the versions are what the server installs
            if not line:
                continue
            if line.endswith("\\"):
                raise bad_request(f"requirements line {number}: line continuations ('\\') are not supported")
            lines.append((line, f"requirements line {number}"))
        return lines

    def parse_option(self, text: str, where: str) -> str:
        """An installer option: one of the administrator's allowed few, or refused."""
        option = text.strip()
        if option in SAFE_INSTALLER_OPTIONS:
            if option not in self.allowed_installer_options:
                raise refused_by(
                    "allowed_installer_options",
                    f"{where}: the installer option {option!r} is not allowed on this server; remove it",
                )
            return option
        allowed = (
            f" (allowed here: {', '.join(self.allowed_installer_options)})" if self.allowed_installer_options else ""
        )
        raise bad_request(
            f"{where}: {option.split()[0]!r} is an installer option, not a package; options are not allowed{allowed} "
            "(the index, find-links and proxy are set by the administrator). Use specs like 'flask==3.0.3'",
            "installer option",
        )

    def parse_spec(self, spec: str, where: str) -> str:
        """One package spec, normalized; URLs and paths refused with the reason (options never get here)."""
        text = spec.strip()
        if not text:
            raise bad_request(f"{where}: empty package spec; remove it or name a package like 'requests>=2'")
        if len(text) > 500:
            raise bad_request(f"{where}: package spec longer than 500 characters")
        if "://" in text and "@" not in text:
            raise bad_request(f"{where}: {text!r} is a URL; name a package from the index instead", "url")
        try:
            req = Requirement(text)
        except InvalidRequirement as err:
            if text.startswith((".", "~", "/", "\\")) or "/" in text.split(";")[0] or "\\" in text:
                raise bad_request(
                    f"{where}: {text!r} is a local path; name a package from the index instead", "path"
                ) from None
            why = str(err).splitlines()[0]  # packaging adds the spec again and a caret, on lines of their own
            raise bad_request(
                f"{where}: {text!r} is not a PEP 508 requirement ({why}); write it like 'name', 'name==1.2' "
                "or 'name[extra]>=1,<2'",
                "not PEP 508",
            ) from None
        spec_text = str(req)
        if _INSTALLER_READS.search(spec_text):
            raise bad_request(
                f"{where}: {text!r} contains ' #' (a comment in the requirements file the installer reads) or '${{' "
                "(an environment variable it expands): the installer would not read this spec as written",
                "not PEP 508",
            )
        if req.url and not self.allow_direct_references:
            raise refused_by(
                "allow_direct_references",
                f"{where}: {text!r} is a direct reference (URL or path); name a package from the index instead",
            )
        return spec_text

    def check_packages(self, specs: Iterable[str]) -> None:
        self.check_names(requirement_names(specs))

    def check_names(self, names: Iterable[str]) -> None:
        """allowed_packages / denied_packages, for pip and Conda package names alike."""
        for name in sorted({canonicalize_name(name) for name in names}):
            if any(fnmatch.fnmatchcase(name, canonicalize_name(glob)) for glob in self.denied_packages):
                raise refused_by("denied_packages", f"the package {name!r} may not be installed on this server")
            if self.allowed_packages and not any(
                fnmatch.fnmatchcase(name, canonicalize_name(glob)) for glob in self.allowed_packages
            ):
                raise refused_by(
                    "allowed_packages",
                    f"the package {name!r} is not among the packages allowed here ({', '.join(self.allowed_packages)})",
                )

    def check_overrides(self, specs: Iterable[str], base: dict[str, Dist]) -> None:
        """Refuse an intended override (another version of a base package) of a protected package."""
        for req, dist in overrides(specs, base):
            name = canonicalize_name(req.name)
            rule = next((g for g in self.protected_packages if fnmatch.fnmatchcase(name, canonicalize_name(g))), None)
            if rule is not None:
                raise refused_by(
                    "protected_packages",
                    f"{req} would override the base's {dist.name} {dist.version}, which matches the protected "
                    f"pattern {rule!r}; use the base's version or pick another base",
                )

    def check_base(self, base: Environment | None, wanted: str) -> Environment:
        """The base must be a known, usable Conda environment (a layer on a layer would not inherit it)."""
        if base is None:
            raise bad_request(
                f"base {wanted!r} is not a known environment: use the id or path of a Conda env "
                "from GET environments (or `jupyter layenv list`)",
                "unknown base",
            )
        refusal = self.layer_refusal(base)
        if refusal is not None:
            raise refusal
        return base

    def layer_refusal(self, base: Environment) -> PolicyError | None:
        """Why no layer may be built on ``base``, or ``None``; the listing carries it for the panel's base choice."""
        if base.kind not in BASE_KINDS:
            return bad_request(
                f"base {base.name!r} is {kind_noun(base.kind)}: a layer must be built on a Conda environment "
                "(kind conda-base or conda-env), whose packages it can inherit",
                "base not a Conda env",
            )
        if not base.python or not os.path.exists(base.python):
            return bad_request(f"base {base.name!r} has no working Python interpreter; pick another base", "no python")
        if not self.base_allowed(base):
            return refused_by(
                "allowed_bases", f"layers on {base.name} are not allowed on this server; pick another base"
            )
        return None

    def base_allowed(self, base: Environment) -> bool:
        return any(
            fnmatch.fnmatchcase(base.id, glob) or fnmatch.fnmatchcase(base.path, glob) for glob in self.allowed_bases
        )

    def root_refusal(self, root: CreateRoot, *, writes_in_it: bool = True) -> PolicyError | None:
        """Why nothing may be created in ``root``, or ``None``; ``writes_in_it=False``: what is created goes
        elsewhere (the user's Conda envs go to the Conda envs dir), so a read-only ``root`` does not refuse it."""
        if root.scope not in self.create_in:
            where = "your own root" if root.scope == SCOPE_USER else "group roots"
            return refused_by("create_in", f"creating environments in {where} is not allowed on this server")
        if writes_in_it and not root.writable:
            owner = f"group {root.group}" if root.group else "its owner"
            return PolicyError(
                403,
                read_only_mount_words(root.path, "created")
                or f"{root.path} is not writable for this server's user; ask {owner} for write access "
                f"(for a group root: chmod 2775 {root.path})",
                "read-only root",
            )
        return None

    def check_quota(self, owned: int, active_jobs: int) -> None:
        if self.max_jobs and active_jobs >= self.max_jobs:
            raise refused_by(
                "max_jobs",
                f"{active_jobs} create jobs are queued or running (at most {self.max_jobs}); try again later",
            )
        if self.max_envs_per_user and owned >= self.max_envs_per_user:
            raise refused_by(
                "max_envs_per_user",
                f"you have {owned} environments (at most {self.max_envs_per_user}); delete one first",
            )

    def check_bytes(self, used: int) -> None:
        if self.max_bytes_per_user and used >= self.max_bytes_per_user:
            raise refused_by(
                "max_bytes_per_user",
                f"your environments use {human_bytes(used)} (at most {human_bytes(self.max_bytes_per_user)}); "
                "delete one or remove the unused ones with `jupyter layenv clean` first",
            )

    def check_delete(
        self, env: Environment, discovered: Discovered, uid: int, running: Sequence[RunningKernel] = ()
    ) -> None:
        refusal = self.delete_refusal(env, discovered, uid, running)
        if refusal is not None:
            raise refusal

    def delete_refusal(
        self, env: Environment, discovered: Discovered, uid: int, running: Sequence[RunningKernel] = ()
    ) -> PolicyError | None:
        """Why ``env`` may not be deleted (only the caller's own, writable layers, venvs and Conda envs, nothing
        built on them, no kernel running from them (``running``, see ``inuse``); never a Conda install root, never
        another user's Conda env), or ``None``. What no kernel shutdown would help comes first.

        The listing carries this reason too, so the panel explains a disabled delete without its own rules.
        """
        who = discovered.label(env)
        if env.kind == CONDA_BASE or (env.kind == CONDA_ENV and _conda_install_root(env.path)):
            return PolicyError(
                403,
                f"{who} is a Conda install root (conda and its envs live in {env.path}): jupyter_layenv never "
                "deletes one; delete its envs one by one, or uninstall Conda itself",
                "conda root",
            )
        if (
            env.kind == CONDA_ENV
            and env.creator is None
            and env.owner_uid != uid
            and not _in_system_root(env, discovered)  # last: every listing asks this of every env
        ):
            return PolicyError(
                403,
                f"{who} is a Conda environment of another user (uid {env.owner_uid}): jupyter_layenv deletes only "
                f"the Conda envs this server's user owns; its owner can run `conda remove -p {env.path} --all`",
                "not yours",
            )
        if env.is_server_prefix:
            return PolicyError(403, f"{who} is the environment this Jupyter server runs in", "server env")
        if env.scope == SCOPE_SYSTEM:
            return PolicyError(
                403,
                f"{who} is a system environment (in a system root, or another user's outside your roots): "
                "jupyter_layenv never deletes those; ask its owner or your administrator",
                "system",
            )
        return (
            self.path_refusal(env)
            or self._owner_refusal(env, discovered, uid)
            or kernels_refusal(env, running, name=who)
        )

    def path_refusal(self, env: Environment) -> PolicyError | None:
        """Where the env is makes a delete impossible: through a link, or on a read-only mount."""
        if os.path.islink(env.path):
            return PolicyError(
                403,
                f"{env.path} is a symbolic link to {os.path.realpath(env.path)}: jupyter_layenv deletes no "
                f"environment through a link; remove the link itself (rm {env.path}), the environment stays",
                "symbolic link",
            )
        mounted = read_only_mount_words(os.path.dirname(env.path), "deleted")
        if mounted:
            return PolicyError(403, mounted, "read-only root")
        return None

    def _owner_refusal(self, env: Environment, discovered: Discovered, uid: int) -> PolicyError | None:
        """Whose env it is and what is built on it."""
        who = discovered.label(env)
        layers = [discovered.label(layer) for layer in discovered.layers.get(env.path, ())]
        if layers:
            return PolicyError(403, f"{who} is the base of {', '.join(layers)}; delete those first", "is a base")
        inside = [discovered.label(other) for other in discovered.held.get(env.path, ())]
        if inside:
            return PolicyError(403, f"{who} holds the environments {', '.join(inside)}; delete those first", "holds")
        if uid != 0 and env.owner_uid != uid and env.scope != SCOPE_GROUP:
            return PolicyError(403, f"{who} belongs to another user (uid {env.owner_uid})", "not yours")
        if not env.writable or not os.access(os.path.dirname(env.path), os.W_OK | os.X_OK):
            shared = (
                " (a group's env: its members may delete it where it is group-writable)"
                if env.scope == SCOPE_GROUP
                else ""
            )
            return PolicyError(403, f"{who} is read-only for this server's user{shared}", "read-only")
        return None


def _in_system_root(env: Environment, discovered: Discovered) -> bool:
    return any(
        root.scope == SCOPE_SYSTEM and env.path.startswith(root.path.rstrip(os.sep) + os.sep)
        for root in discovered.roots
    )


def kernels_refusal(
    env: Environment, running: Sequence[RunningKernel], *, name: str | None = None
) -> PolicyError | None:
    """409 while a kernel runs from ``env``, or from a layer on it, naming each (server words: see cliwords);
    ``name``: how the message calls ``env`` (``Discovered.label``: with its path where its name is shared)."""
    using = inuse.using(env, running)
    if not using:
        return None
    count = f"{len(using)} kernels are" if len(using) > 1 else "1 kernel is"
    them = "them" if len(using) > 1 else "it"
    mine = inuse.paths(env)
    layers = sorted({os.path.basename(k.env) for k in using if k.env not in mine})
    on = f" (through its layers {', '.join(layers)})" if layers else ""
    return PolicyError(
        409,
        f"{count} running from {name or env.name}{on} ({', '.join(k.where for k in using)}): shut {them} down first, "
        "then delete (Kernel > Shut Down Kernel in a notebook, or the Running Terminals and Kernels panel)",
        "kernels running",
    )


def human_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if isinstance(name, str) else type(name).__name__
        raise bad_request(
            f"invalid env name {shown}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (no '/', no spaces)",
            "invalid name",
        )
    return name


def _conda_install_root(path: str) -> bool:
    """conda's own marks of an install root, whatever discovery called the env (it may be listed as an env)."""
    return os.path.isdir(os.path.join(path, "condabin")) or os.path.isdir(os.path.join(path, "envs"))


def read_only_mount_words(directory: str, done: str) -> str | None:
    """Why nothing in ``directory`` can be ``done`` ("created", "changed", "deleted") when it is on a read-only
    mount, where no chmod or owner helps; ``None`` when it is not."""
    try:
        if not os.statvfs(directory).f_flag & os.ST_RDONLY:
            return None
    except OSError:
        return None
    return (
        f"{directory} is on a read-only file system (mounted read-only): nothing in it can be {done} from this "
        "server; ask your administrator to mount it read-write"
    )


def _is_option(text: str) -> bool:
    return text.strip().startswith("-")


def requirement_names(specs: Iterable[str]) -> set[str]:
    return {canonicalize_name(Requirement(spec).name) for spec in specs}
