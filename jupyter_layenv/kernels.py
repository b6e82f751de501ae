"""Environments -> kernel entries: stable names, layered display names, metadata, launch argv/env.

Pure functions of a discovery result and the server's native kernelspecs, so the kernel spec manager,
the REST API and the CLI all agree on names.
"""

from __future__ import annotations

import fnmatch
import functools
import grp
import os
import pwd
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from . import activation, fsread
from .discovery import slug
from .model import (
    CONDA_BASE,
    CONDA_ENV,
    Discovered,
    Environment,
    KernelEntry,
    ScopedRoot,
    ShippedKernel,
    fast_init,
    group_root_of,
)

RESOURCES = os.path.join(os.path.dirname(__file__), "resources")
SYNC_MARKER = "synced_by_layenv"
DEFAULT_DISPLAY_NAME = "{kernel} ({chain})"
PROVISIONER_NAME = "layenv-provisioner"  # jupyter_layenv.provisioner, registered in pyproject.toml
# More new or removed envs than this at once: building the table afresh is cheaper than patching the last one.
MAX_PATCHED_ENVS = 8
_IPYKERNEL_ARGS = [["-m", module, "-f", "{connection_file}"] for module in ("ipykernel_launcher", "ipykernel")]
_NB_CONDA_UNSAFE = re.compile(r"[^a-z0-9._-]")  # nb_conda_kernels puts '_' for each
Claim = str | tuple[int, int]  # what a native kernelspec points at: a prefix path, its (st_dev, st_ino), or a name
_PYTHON_NAMES = {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


@dataclass(frozen=True)
class Filters:
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    allowed: frozenset = frozenset()

    @property
    def active(self) -> bool:
        """Whether any rule is set (else ``refusal`` need not be asked per kernel)."""
        return bool(self.include or self.exclude or self.allowed)

    def refusal(self, name: str, env: Environment) -> str | None:
        """Why a kernel is filtered out, naming the rule, or ``None`` when it is kept."""
        if self.include and not any(_matches(pattern, name, env.path) for pattern in self.include):
            return "filtered out: matches no LayenvKernelSpecManager.include pattern"
        for pattern in self.exclude:
            if _matches(pattern, name, env.path):
                return f"filtered out by LayenvKernelSpecManager.exclude pattern {pattern!r}"
        if self.allowed and name not in self.allowed:
            return "filtered out: not in KernelSpecManager.allowed_kernelspecs"
        return None


def _matches(pattern: str, name: str, path: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(
        path, fsread.expand(pattern) if "/" in pattern else pattern
    )


@dataclass(frozen=True)
class TableInputs:
    """What every entry of a table depends on besides its own env: a change needs a complete build."""

    native_specs: Mapping[str, dict]  # the manager hands out the same dict while its kernelspecs are unchanged
    display_name_format: str
    filters: Filters
    roots: tuple[ScopedRoot, ...]

    def same_as(self, other: TableInputs) -> bool:
        return (
            self.native_specs is other.native_specs
            and self.display_name_format == other.display_name_format
            and self.filters == other.filters
            and self.roots == other.roots
        )


@fast_init
@dataclass(frozen=True, slots=True)
class EnvKernels:
    """The entries one env produced, with what they were made from: reused while the env and its usage root are."""

    env: Environment
    usage_root: str | None  # a group env's group root, which its kernels' provisioner config names
    python: KernelEntry | None
    shipped: tuple[KernelEntry, ...]


@dataclass
class KernelTable:
    """Everything the kernel spec manager answers from, rebuilt only when discovery or native specs change."""

    entries: dict[str, KernelEntry] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    nb_conda_aliases: dict[str, str] = field(default_factory=dict)  # the names nb_conda_kernels gave, for `sync`
    native: dict[str, dict] = field(default_factory=dict)  # visible native specs, name -> get_all_specs item
    env_kernels: dict[str, list[str]] = field(default_factory=dict)
    env_reasons: dict[str, str] = field(default_factory=dict)  # env id -> why filtered out
    all_specs: dict[str, dict] = field(default_factory=dict)
    built_from: dict[int, EnvKernels] = field(default_factory=dict)  # id(env) -> what it produced, for the next build
    # what an update (one env added or removed) must know to give the table a complete build would
    inputs: TableInputs | None = None
    env_aliases: dict[str, list[str]] = field(default_factory=dict)  # env id -> the nb_conda_kernels names it got
    contested: set[str] = field(default_factory=set)  # names two envs (or an env and a native spec) claimed
    native_claims: set[Claim] = field(default_factory=set)  # paths, dir ids and names the native specs point at

    def resolve(self, name: str) -> str | None:
        name = name.lower()
        if name in self.entries or name in self.native:
            return name
        return self.aliases.get(name)


def build_table(
    discovered: Discovered,
    native_specs: Mapping[str, dict],
    *,
    display_name_format: str,
    filters: Filters,
    previous: KernelTable | None = None,
    changes: tuple[Sequence[Environment], Sequence[Environment]] | None = None,
) -> KernelTable:
    """The table for a discovery result; entries of envs unchanged since ``previous`` are reused as they are, and
    when only a few envs changed, the previous table is patched (``_update``) instead of rebuilt."""
    inputs = TableInputs(native_specs, display_name_format, filters, discovered.roots)
    before = previous.inputs if previous is not None else None
    if previous is not None and before is not None and before.same_as(inputs):
        updated = _update(previous, before, discovered, changes)
        if updated is not None:
            return updated
    table = KernelTable(inputs=inputs)
    # an env's entries are reused while it is the same object, and the names are made the same way
    reusable = (
        previous.built_from
        if previous is not None and before is not None and before.display_name_format == display_name_format
        else {}
    )
    envs_by_path = {env.path: env for env in discovered.environments}
    envs_by_dir = {env.dir_id: env for env in discovered.environments}
    native_owner: dict[str, Environment] = {}
    for name, item in native_specs.items():
        spec = item.get("spec", {})
        if (spec.get("metadata") or {}).get(SYNC_MARKER):
            continue  # a copy `jupyter layenv sync` wrote; the live entry replaces it
        claims = _native_claims(spec)
        owner = _native_owner(claims, envs_by_path, envs_by_dir) if _copies_env_kernel(spec) else None
        table.native_claims.update(claims)
        table.native_claims.add(name)
        if owner is not None:
            native_owner[name] = owner
        if owner is None or owner.is_server_prefix:
            table.native[name] = item
    natively_served = {env.id: name for name, env in native_owner.items() if env.is_server_prefix}

    provisioner = provisioner_registered()
    built_from = table.built_from
    for env in discovered.environments:
        usage_root = group_root_of(env, discovered)
        built = reusable.get(id(env))
        if built is None or built.env is not env or built.usage_root != usage_root:
            built = _env_kernels(env, usage_root, display_name_format, provisioner)
        built_from[id(env)] = built
        _place_env(table, built, filters, served=natively_served.get(env.id))

    for name, owner in native_owner.items():
        if name not in table.native:
            target = f"{owner.id}-py"
            table.native_claims.add(target)
            if target in table.entries:
                table.aliases.setdefault(name, target)
    _add_nb_conda_aliases(table, discovered)
    for name in list(table.native):
        if name in table.entries or (filters.allowed and name not in filters.allowed):
            del table.native[name]
    table.all_specs = {**table.native, **{name: entry.item for name, entry in table.entries.items()}}
    return table


def _place_env(
    table: KernelTable, built: EnvKernels, filters: Filters, *, served: str | None = None, patch: bool = False
) -> bool:
    """Puts an env's kernels in ``table``: its Python kernel, unless the native spec ``served`` serves the env or
    a filter refuses it (the reason is noted), and its other kernels, unless a filter refuses them or their name is
    taken (then contested). ``patch``: ``table`` is a patched copy, where a name taken (by an entry, an alias or a
    native spec) means that only a complete build gives the right answer: ``False``, and the copy is dropped."""
    env = built.env
    filtering = filters.active
    names = [served] if served is not None else []
    python = built.python
    if served is None and python is not None:
        reason = filters.refusal(python.name, env) if filtering else None
        if reason:
            table.env_reasons[env.id] = reason
        elif patch and _taken(table, python.name):
            return False
        else:
            table.entries[python.name] = python
            names.append(python.name)
    for entry in built.shipped:
        if entry.name in table.entries or (patch and _taken(table, entry.name)):
            if patch:
                return False
            table.contested.add(entry.name)
        elif not (filtering and filters.refusal(entry.name, env)):
            table.entries[entry.name] = entry
            names.append(entry.name)
    table.env_kernels[env.id] = names
    if patch:
        for name in names:
            table.all_specs[name] = table.entries[name].item
    return True


def _taken(table: KernelTable, name: str) -> bool:
    return name in table.entries or name in table.aliases or name in table.native_claims


def _env_kernels(env: Environment, usage_root: str | None, display_name_format: str, provisioner: bool) -> EnvKernels:
    own: list[ShippedKernel] = []
    shipped: tuple[KernelEntry, ...] = ()
    if env.shipped_kernels:  # most envs ship none, or only ipykernel's own
        others: list[ShippedKernel] = []
        for kernel in env.shipped_kernels:
            (own if _is_env_python_kernel(kernel) else others).append(kernel)
        shipped = tuple(
            [
                _shipped_entry(env, kernel, display_name_format, _metadata(env, provisioner, usage_root))
                for kernel in others
            ]
        )
    python_entry = None
    if env.has_ipykernel and env.python and not env.skipped_reason:
        python_entry = _python_entry(env, display_name_format, own, _metadata(env, provisioner, usage_root))
    return EnvKernels(env, usage_root, python_entry, shipped)


def _copies_env_kernel(spec: dict) -> bool:
    """A plain ``python -m ipykernel install`` (the seed's): the env's own Python kernel once more, so folded into it.
    Another module (bash_kernel, sos…), more options or variables of its own make a kernel of its own."""
    argv = [str(arg) for arg in spec.get("argv") or []]
    return str(spec.get("language", "")).lower() == "python" and argv[1:] in _IPYKERNEL_ARGS and not spec.get("env")


def _native_owner(
    claims: list[Claim], by_path: dict[str, Environment], by_dir: dict[tuple[int, int], Environment]
) -> Environment | None:
    """The discovered env whose interpreter a native kernelspec starts, if any (``claims``: ``_native_claims``)."""
    for claim in claims:
        owner = by_path.get(claim) if isinstance(claim, str) else by_dir.get(claim)
        if owner is not None:
            return owner
    return None


def _is_env_python_kernel(shipped: ShippedKernel) -> bool:
    """ipykernel's own ``share/jupyter/kernels/python3`` is this env's Python kernel, not a second one."""
    if shipped.language.lower() != "python":
        return False
    exe = os.path.basename(str(shipped.spec["argv"][0]))
    return shipped.dirname == "python3" or exe.startswith("python") or exe == "{prefix}"


def _python_entry(
    env: Environment,
    display_name_format: str,
    own: list[ShippedKernel],
    metadata: dict[str, Any],
) -> KernelEntry:
    argv, env_vars = activation.kernel_launch(
        env.activation, [env.python or "python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    )
    display = env.display_name or _display_name(
        display_name_format, env, _python_label(env.python_version or ""), "python"
    )
    metadata["debugger"] = True
    spec = {
        "argv": argv,
        "display_name": display,
        "language": "python",
        "interrupt_mode": "signal",
        "env": env_vars,
        "metadata": metadata,
    }
    item = {"resource_dir": _python_resources(env, own), "spec": spec}
    return KernelEntry(f"{env.id}-py", "python", env.id, item)


@functools.lru_cache(maxsize=64)
def _python_label(version: str) -> str:
    """``Python 3.11`` for 3.11.7 (the same few versions for every env)."""
    return f"Python {'.'.join(version.split('.')[:2])}".strip()


def _python_resources(env: Environment, own: list[ShippedKernel]) -> str:
    """The logos of the env's Python kernel: ipykernel's own kernelspec the env ships, else the ``resources``
    folder of the ipykernel it imports. Not checked with a ``stat`` per env: the site-packages listing showed the
    package, and a folder missing (an ipykernel without logos) serves no logo, as ``RESOURCES`` (no logo) did."""
    if own:
        return own[0].resource_dir
    return env.ipykernel_resources or RESOURCES


def _shipped_entry(
    env: Environment, shipped: ShippedKernel, display_name_format: str, own_metadata: dict[str, Any]
) -> KernelEntry:
    original = dict(shipped.spec)
    argv = [str(arg) for arg in original["argv"]]
    argv[0] = _resolve_executable(argv[0], env)
    launch_argv, env_vars = activation.kernel_launch(env.activation, argv)
    env_vars = {**{str(k): str(v) for k, v in (original.get("env") or {}).items()}, **env_vars}
    language = str(original.get("language") or "")
    label = str(original.get("display_name") or shipped.dirname)
    display = _display_name(display_name_format, env, label, language)
    metadata = {**(original.get("metadata") or {}), **own_metadata}
    spec = {**original, "argv": launch_argv, "display_name": display, "env": env_vars, "metadata": metadata}
    item = {"resource_dir": shipped.resource_dir, "spec": spec}
    return KernelEntry(f"{env.id}-{slug(shipped.dirname)}", language, env.id, item)


def _resolve_executable(exe: str, env: Environment) -> str:
    """A bare ``R`` or ``python`` in a shipped spec means the env's own, not whatever the server has on PATH."""
    if exe in _PYTHON_NAMES and env.python:
        return env.python
    if os.path.isabs(exe) or os.sep in exe or exe.startswith("{"):
        return exe
    for directory in env.activation.path_dirs:
        candidate = os.path.join(directory, exe)
        if fsread.exists(candidate):
            return candidate
    return exe


def _display_name(fmt: str, env: Environment, kernel: str, language: str) -> str:
    if fmt == DEFAULT_DISPLAY_NAME:  # the default, without building every field
        return f"{kernel} ({' ▸ '.join(env.chain) or env.name})"
    fields = {
        "kernel": kernel,
        "chain": " ▸ ".join(env.chain) or env.name,
        "env": env.name,
        "base": env.chain[0] if len(env.chain) > 1 else "",
        "kind": env.kind,
        "python_version": env.python_version or "",
        "language": language,
        "scope": env.scope,
    }
    try:
        return fmt.format(**fields)
    except (KeyError, IndexError, ValueError):
        return DEFAULT_DISPLAY_NAME.format(**fields)


def _metadata(env: Environment, provisioner: bool, usage_root: str | None) -> dict[str, Any]:
    """``usage_root``: a group env's group root, where every member's kernel starts are kept; its provisioner is
    told (nbconvert and papermill start the kernel without discovery)."""
    metadata: dict[str, Any] = {
        "layenv": {
            "path": env.path,
            "kind": env.kind,
            "base": env.base,
            "python_version": env.python_version,
            "scope": env.scope,
        },
        "conda_env_name": env.conda_env_name or env.name,
        "conda_env_path": env.path,
    }
    if provisioner:
        config = {"env": env.path} if usage_root is None else {"env": env.path, "usage_root": usage_root}
        metadata["kernel_provisioner"] = {"provisioner_name": PROVISIONER_NAME, "config": config}
    return metadata


def layenv_provisioner(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The spec's ``kernel_provisioner`` block when it starts through jupyter_layenv's provisioner, else ``None``."""
    provisioner = spec.get("metadata", {}).get("kernel_provisioner")
    return provisioner if provisioner and provisioner.get("provisioner_name") == PROVISIONER_NAME else None


@functools.lru_cache(maxsize=1)
def provisioner_registered() -> bool:
    """Whether jupyter_client can find ``layenv-provisioner`` (an install whose entry points were never written,
    e.g. a stale editable one, would otherwise refuse to start every kernel); the plain argv/env work without it."""
    return bool(entry_points(group="jupyter_client.kernel_provisioners", name=PROVISIONER_NAME))


def _add_nb_conda_aliases(table: KernelTable, discovered: Discovered) -> None:
    """Names nb_conda_kernels gave the same envs, so notebooks saved elsewhere open without a dialog."""
    for env in discovered.environments:
        if env.kind in (CONDA_BASE, CONDA_ENV):
            for alias, kernel_name in _nb_conda_aliases(table, env):
                if alias in table.entries or table.aliases.setdefault(alias, kernel_name) != kernel_name:
                    table.contested.add(alias)
                elif table.nb_conda_aliases.setdefault(alias, kernel_name) == kernel_name:
                    table.env_aliases.setdefault(env.id, []).append(alias)


def _nb_conda_aliases(table: KernelTable, env: Environment) -> list[tuple[str, str]]:
    """The (alias, kernel name) pairs nb_conda_kernels would have named a Conda env's kernels: an IRkernel spec
    (``ir``) ends in ``-r``; an env in an ``envs`` folder other than its conda's install's gets that folder's parent
    in front (``~/.conda/envs/x``: ``conda-env-.conda-x-py``, ``/opt/miniforge3/envs/x``: ``conda-env-miniforge3-x-py``)
    and the root of such an install is named by its folder (``conda-env-miniforge3-py``), as nb_conda_kernels does.
    Which install was its conda's is not known here: every install's envs and root get both names."""
    pairs: list[tuple[str, str]] = []
    kernels = [name for name in table.env_kernels.get(env.id, []) if name in table.entries]
    if env.kind == CONDA_BASE:
        middles = ["root", "base", f"env-{os.path.basename(env.path.rstrip(os.sep))}"]
    else:
        middles = [f"env-{name}" for name in _nb_conda_env_names(env)]
    for kernel_name in kernels:
        entry = table.entries[kernel_name]
        suffix = "py" if entry.language == "python" else kernel_name[len(env.id) + 1 :]
        for end in (suffix, "r") if suffix == "ir" else (suffix,):
            for middle in middles:
                alias = _nb_conda_clean(f"conda-{middle}-{end}")
                if (alias, kernel_name) not in pairs:
                    pairs.append((alias, kernel_name))
    return pairs


def _nb_conda_clean(name: str) -> str:
    """A kernel name as nb_conda_kernels cleans it (accents dropped, any other odd character ``_``), lower case. An
    ASCII name (most) has no accent to drop: no pass over its characters (a cold listing cleans two per Conda env)."""
    if name.isascii():
        return _NB_CONDA_UNSAFE.sub("_", name.lower())
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return _NB_CONDA_UNSAFE.sub("_", plain.lower())


def _nb_conda_env_names(env: Environment) -> list[str]:
    """The env's name, and for one in an ``envs`` folder, ``<folder's parent>-<name>``: the name nb_conda_kernels
    gives it unless that folder is its conda's own install's."""
    envs_dir, folder = os.path.split(env.path)
    names = [env.name, folder] if env.name != folder else [folder]
    if os.path.basename(envs_dir) == "envs":
        names.append(f"{os.path.basename(os.path.dirname(envs_dir))}-{folder}")
    return names


def _native_claims(spec: dict) -> list[Claim]:
    """The prefix (path and device/inode) a native kernelspec's interpreter is in: an env there may own it.
    One ``stat`` per native spec, shared with ``_native_owner``."""
    argv = spec.get("argv") or []
    exe = str(argv[0]) if argv else ""
    if exe in _PYTHON_NAMES or exe == sys.executable:
        exe = sys.executable
    if not os.path.isabs(exe):
        return []
    prefix = os.path.dirname(os.path.dirname(exe))
    try:
        info = os.stat(prefix)
    except OSError:
        return [prefix]
    return [prefix, (info.st_dev, info.st_ino)]


def _update(
    previous: KernelTable,
    inputs: TableInputs,
    discovered: Discovered,
    changes: tuple[Sequence[Environment], Sequence[Environment]] | None,
) -> KernelTable | None:
    """``previous`` with the entries of the envs that are new objects since (added or rebuilt) and without those
    of the envs gone; ``None`` when a complete build is needed: a name two envs claim, a native spec's env, many
    changes at once.
    """
    old = previous.built_from
    if changes is not None:  # discovery says which envs are new objects and which went (``changes``)
        added, removed = list(changes[0]), [env for env in changes[1] if id(env) in old]
    else:
        current = {id(env) for env in discovered.environments}
        if len(current) != len(discovered.environments):
            return None
        added = [env for env in discovered.environments if id(env) not in old]
        removed = [built.env for key, built in old.items() if key not in current]
    if len(added) + len(removed) > MAX_PATCHED_ENVS:
        return None
    claims, contested = previous.native_claims, previous.contested
    for env in (*added, *removed):
        if env.path in claims or env.dir_id in claims:
            return None
    table = KernelTable(
        entries=dict(previous.entries),
        aliases=dict(previous.aliases),
        nb_conda_aliases=dict(previous.nb_conda_aliases),
        native=previous.native,
        env_kernels=dict(previous.env_kernels),
        env_reasons=dict(previous.env_reasons),
        all_specs=dict(previous.all_specs),
        built_from=dict(old),
        inputs=inputs,
        env_aliases=dict(previous.env_aliases),
        contested=contested,
        native_claims=claims,
    )
    for env in removed:
        names = table.env_kernels.pop(env.id, [])
        aliases = table.env_aliases.pop(env.id, [])
        if not contested.isdisjoint(names) or not contested.isdisjoint(aliases) or not claims.isdisjoint(names):
            return None
        for name in names:
            del table.entries[name]
            del table.all_specs[name]
        for alias in aliases:
            del table.aliases[alias]
            del table.nb_conda_aliases[alias]
        table.env_reasons.pop(env.id, None)
        del table.built_from[id(env)]
    provisioner = provisioner_registered()
    for env in added:
        if env.id in table.env_kernels:
            return None
        built = _env_kernels(env, group_root_of(env, discovered), inputs.display_name_format, provisioner)
        table.built_from[id(env)] = built
        if not _place_env(table, built, inputs.filters, patch=True):
            return None
        if env.kind in (CONDA_BASE, CONDA_ENV):
            pairs = _nb_conda_aliases(table, env)
            if any(_taken(table, alias) for alias, _kernel in pairs):
                return None
            for alias, kernel_name in pairs:
                table.aliases[alias] = kernel_name
                table.nb_conda_aliases[alias] = kernel_name
                table.env_aliases.setdefault(env.id, []).append(alias)
    return table


def environment_json(env: Environment, table: KernelTable) -> dict[str, Any]:
    """The Environment JSON of the REST/CLI contract."""
    kernels = []
    for name in table.env_kernels.get(env.id, []):
        item = table.all_specs.get(name)
        if item:
            spec = item["spec"]
            kernels.append(
                {"name": name, "display_name": spec.get("display_name", name), "language": spec.get("language", "")}
            )
    return {
        "id": env.id,
        "name": env.name,
        "path": env.path,
        "kind": env.kind,
        "base": env.base,
        "python_version": env.python_version,
        "kernels": kernels,
        "writable": env.writable,
        "scope": env.scope,
        "owner": user_name(env.owner_uid),
        "group": group_name(env.owner_gid),
        "creator": env.creator,
        "skipped_reason": None if kernels else (table.env_reasons.get(env.id) or env.skipped_reason),
    }


@functools.lru_cache(maxsize=256)
def user_name(uid: int) -> str | None:
    """The login name of a uid (the uid itself when the passwd database has no entry, e.g. in a container)."""
    if uid < 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@functools.lru_cache(maxsize=256)
def group_name(gid: int) -> str | None:
    if gid < 0:
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def listing_json(discovered: Discovered, table: KernelTable) -> dict[str, Any]:
    return {
        "environments": [environment_json(env, table) for env in discovered.environments],
        "skipped": [{"path": skip.path, "reason": skip.reason} for skip in discovered.skipped],
    }
