"""LayenvKernelSpecManager: every usable environment as a kernel, next to the server's native kernelspecs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
from collections.abc import Awaitable
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Bool, Float, Int, List, Unicode, default, observe

from . import fsread
from .discovery import Discovery, DiscoveryConfig, mtime_signature, signature_unchanged
from .discovery.cache import Signature
from .kernels import Filters, KernelTable, build_table, layenv_provisioner, listing_json
from .model import Discovered

DEFAULT_CONDA_ROOTS = [
    "~/miniconda3",
    "~/anaconda3",
    "~/miniforge3",
    "~/mambaforge",
    "~/micromamba",
    "~/miniconda",
    "~/anaconda",
    "~/opt/anaconda3",
    "~/.local/miniconda3",
    "/opt/conda",
    "/opt/miniconda3",
    "/opt/anaconda3",
    "/opt/miniforge3",
    "/usr/share/miniconda",
    "/usr/local/anaconda3",
]
# Where poetry, pipenv, virtualenvwrapper and pyenv(-virtualenv) keep their venvs (pyenv's also holds Conda installs)
DEFAULT_VENV_ROOTS = [
    "~/.virtualenvs",
    "~/.venvs",
    "~/.cache/pypoetry/virtualenvs",
    "~/.local/share/virtualenvs",
    "~/Envs",
    "~/envs",
    "~/.pyenv/versions",
]


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _env_var_conda_roots(environ: dict[str, str]) -> list[str]:
    """Roots named by an activated shell: CONDA_EXE's install, CONDA_PREFIX's root, MAMBA_ROOT_PREFIX."""
    roots = []
    if environ.get("CONDA_EXE"):
        roots.append(os.path.dirname(os.path.dirname(environ["CONDA_EXE"])))
    prefix = environ.get("CONDA_PREFIX")
    if prefix:
        parent = os.path.dirname(prefix)
        roots.append(os.path.dirname(parent) if os.path.basename(parent) == "envs" else prefix)
    if environ.get("MAMBA_ROOT_PREFIX"):
        roots.append(environ["MAMBA_ROOT_PREFIX"])
    on_path = shutil.which("conda", path=environ.get("PATH", os.defpath))
    if on_path:  # <root>/condabin/conda or <root>/bin/conda; an env's bin/conda is no root and is not listed as one
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(on_path))))
    return roots


def _env_var_venv_roots(environ: dict[str, str]) -> list[str]:
    """Venv roots moved by the tools' own variables."""
    roots = [environ["WORKON_HOME"]] if environ.get("WORKON_HOME") else []
    if environ.get("POETRY_VIRTUALENVS_PATH"):
        roots.append(environ["POETRY_VIRTUALENVS_PATH"])
    if environ.get("XDG_DATA_HOME"):
        roots.append(os.path.join(environ["XDG_DATA_HOME"], "virtualenvs"))  # pipenv
    if environ.get("PYENV_ROOT"):
        roots.append(os.path.join(environ["PYENV_ROOT"], "versions"))
    return roots


def _split_paths(value: str) -> list[str]:
    return [part for chunk in value.split(os.pathsep) for part in chunk.split(",") if part.strip()]


def _condarc_search_path(environ: dict[str, str]) -> list[str]:
    """Every place conda reads a .condarc from (conda's documented search path), files and .d dirs."""
    paths = []
    for directory in ("/etc/conda", "/var/lib/conda", *([environ["CONDA_ROOT"]] if environ.get("CONDA_ROOT") else [])):
        paths += [f"{directory}/.condarc", f"{directory}/condarc", f"{directory}/condarc.d"]
    xdg = environ.get("XDG_CONFIG_HOME") or "~/.config"
    paths += [f"{xdg}/conda/.condarc", f"{xdg}/conda/condarc", f"{xdg}/conda/condarc.d"]
    paths += ["~/.conda/.condarc", "~/.conda/condarc", "~/.conda/condarc.d", "~/.condarc"]
    if environ.get("CONDA_PREFIX"):
        prefix = environ["CONDA_PREFIX"]
        paths += [f"{prefix}/.condarc", f"{prefix}/condarc", f"{prefix}/condarc.d"]
    if environ.get("CONDARC"):
        paths.append(environ["CONDARC"])
    return paths


class LayenvKernelSpecManager(KernelSpecManager):
    """Lists the server's kernelspecs plus one kernel per usable Conda env / virtualenv, found from files."""

    conda_roots = List(Unicode(), config=True, help="Conda install roots (each with conda-meta/ and envs/).")
    envs_dirs = List(Unicode(), config=True, help="Directories whose children are Conda envs (like conda's envs_dirs).")
    environments_files = List(Unicode(), config=True, help="conda's environments.txt files to read.")
    condarc_paths = List(Unicode(), config=True, help=".condarc files and condarc.d dirs whose envs_dirs are read.")
    venv_roots = List(
        Unicode(), config=True, help="Directories whose children are virtualenvs (virtualenvwrapper style)."
    )
    env_paths = List(Unicode(), config=True, help="Individual environment prefixes to include.")
    system_roots = List(
        Unicode(),
        config=True,
        help="Shared servers: the administrator's bases, a Conda install (/opt/conda) or a directory of envs "
        "(/opt/layenv/bases). Listed for every user with scope 'system'; jupyter_layenv never writes there.",
    )
    group_roots = List(
        Unicode(),
        config=True,
        help="Shared servers: one directory per research group, or a glob of them (/srv/layenv/*). A root is "
        "listed for members of the Unix group that owns it (scope 'group'); members create layers there "
        "where the directory's permissions let them (make it setgid and group-writable: chmod 2775).",
    )
    user_roots = List(
        Unicode(),
        config=True,
        help="Directories whose envs have scope 'user' (LayenvService adds the root it creates envs in).",
    )
    root_timeout = Float(
        2.0,
        config=True,
        help="Seconds a configured root (Conda root, envs dir, venv root, env path, system or group root) may take "
        "to answer a stat before a listing leaves it out and reports it as 'not responding' (a hung NFS or FUSE "
        "mount). It is asked again on the next listing. 0 turns the check off.",
    )
    nested_venvs = Bool(True, config=True, help="Find venvs nested one level inside Conda envs (env/project_venv).")
    change_notifications = Bool(
        True,
        config=True,
        help="On Linux, watch the directories of envs on local file systems (ext4, xfs, btrfs, tmpfs, f2fs, zfs) with "
        "inotify, so that a listing skips the stat of what is known unchanged; network, cluster and FUSE file "
        "systems are always checked with stat. Off: every listing checks with stat alone. The CLI never watches.",
    )
    max_watches = Int(
        8192,
        config=True,
        help="At most this many inotify watches for change notifications (and at most 1/8 of the system's "
        "fs.inotify.max_user_watches, which every server of the same user shares); beyond, paths are checked "
        "with stat.",
    )
    include_server_prefix = Bool(True, config=True, help="List the server's own environment (sys.prefix).")
    include = List(Unicode(), config=True, help="Only kernels whose name or env path matches one of these globs.")
    exclude = List(Unicode(), config=True, help="Hide kernels whose name or env path matches one of these globs.")
    display_name_format = Unicode(
        "{kernel} ({chain})",
        config=True,
        help="Kernel display name. Fields: {kernel} (e.g. 'Python 3.11'), {chain} ('py311_ai ▸ myexp_env'), "
        "{env}, {base}, {kind}, {python_version}, {language}, {scope}.",
    )

    @default("conda_roots")
    def _default_conda_roots(self) -> list[str]:
        return list(dict.fromkeys([*DEFAULT_CONDA_ROOTS, *_env_var_conda_roots(dict(os.environ))]))

    @default("envs_dirs")
    def _default_envs_dirs(self) -> list[str]:
        env = os.environ
        return [
            "~/.conda/envs",
            *_split_paths(env.get("CONDA_ENVS_PATH", "")),
            *_split_paths(env.get("CONDA_ENVS_DIRS", "")),
        ]

    @default("environments_files")
    def _default_environments_files(self) -> list[str]:
        return ["~/.conda/environments.txt"]

    @default("condarc_paths")
    def _default_condarc_paths(self) -> list[str]:
        return _condarc_search_path(dict(os.environ))

    @default("venv_roots")
    def _default_venv_roots(self) -> list[str]:
        return list(dict.fromkeys([*DEFAULT_VENV_ROOTS, *_env_var_venv_roots(dict(os.environ))]))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self._native: tuple[Signature, dict[str, dict]] = ({}, {})
        self._table_key: tuple = ()
        self._table = KernelTable()
        self._table_discovered = Discovered()

    @observe(
        "conda_roots",
        "envs_dirs",
        "environments_files",
        "condarc_paths",
        "venv_roots",
        "env_paths",
        "system_roots",
        "group_roots",
        "user_roots",
        "root_timeout",
        "change_notifications",
        "max_watches",
        "nested_venvs",
        "include_server_prefix",
        "include",
        "exclude",
        "display_name_format",
        "allowed_kernelspecs",
        "kernel_dirs",
    )
    def _reset(self, change: Any) -> None:
        self.close()
        self._table_key = ()
        self._table = KernelTable()
        self._native = ({}, {})

    @property
    def discovery(self) -> Discovery:
        if self._discovery is None:
            expand = fsread.expand
            self._discovery = Discovery(
                DiscoveryConfig(
                    conda_roots=[expand(p) for p in self.conda_roots],
                    envs_dirs=[expand(p) for p in self.envs_dirs],
                    environments_files=[expand(p) for p in self.environments_files],
                    condarc_paths=[expand(p) for p in self.condarc_paths],
                    venv_roots=[expand(p) for p in self.venv_roots],
                    env_paths=[expand(p) for p in self.env_paths],
                    nested_venvs=self.nested_venvs,
                    server_prefix=sys.prefix if self.include_server_prefix else None,
                    system_roots=[expand(p) for p in self.system_roots],
                    group_roots=[expand(p) for p in self.group_roots],
                    user_roots=[expand(p) for p in self.user_roots],
                    root_timeout=self.root_timeout,
                    notifications=self.change_notifications,
                    max_watches=self.max_watches,
                ),
                logger=self.log,
            )
        return self._discovery

    def close(self) -> None:
        """Stops discovery's change notifications (the server's extension does at shutdown); the next listing
        starts a new discovery."""
        discovery, self._discovery = getattr(self, "_discovery", None), None  # (traits are set before __init__'s)
        if discovery is not None:
            discovery.close(wait=False)  # (on the event loop: its thread ends after a listing under way)

    def kernel_table(self) -> KernelTable:
        return self.current()[1]

    def current(self) -> tuple[Discovered, KernelTable]:
        """The discovery result and its kernel table; rebuilt only when discovery or native kernelspecs changed.
        Change notifications promote what the listing read once the table is built (see ``Discovery.discover``)."""
        discovery = self.discovery
        try:
            return self._current(discovery.discover(promote=False))
        finally:
            discovery.promote()

    def _current(self, discovered: Discovered) -> tuple[Discovered, KernelTable]:
        native = self._native_specs()
        with self._lock:
            key = (id(discovered), id(native))
            if key != self._table_key:
                filters = Filters(
                    include=self.include, exclude=self.exclude, allowed=frozenset(self.allowed_kernelspecs)
                )
                self._table = build_table(
                    discovered,
                    native,
                    display_name_format=self.display_name_format,
                    filters=filters,
                    previous=self._table,
                    changes=self.discovery.changes(self._table_discovered, discovered),
                )
                self._table_key = key
                self._table_discovered = discovered
            return self._table_discovered, self._table

    def _native_specs(self) -> dict[str, dict]:
        """jupyter_client's own kernelspecs, re-read only when a kernel dir or kernel.json changed."""
        signature, specs = self._native
        if signature and signature_unchanged(signature):
            return specs
        names = super().find_kernel_specs()
        specs = {}
        for name, resource_dir in names.items():
            try:
                spec = self._get_kernel_spec_by_name(name, resource_dir)
            except Exception as err:  # a broken kernel.json must not hide the others; one line, no traceback
                self.log.warning("jupyter_layenv: cannot read kernelspec %s in %s: %s", name, resource_dir, err)
                continue
            specs[name] = {"resource_dir": resource_dir, "spec": spec.to_dict()}
        deps = [*self.kernel_dirs, *names.values(), *(os.path.join(d, "kernel.json") for d in names.values())]
        self._native = (mtime_signature(deps), specs)
        return specs

    def invalidate(self) -> None:
        """Forget cached results (after creating or deleting an env), so the next listing rescans."""
        self.discovery.invalidate()

    # -- KernelSpecManager API ---------------------------------------------------------------------

    def find_kernel_specs(self) -> dict[str, str]:
        return {name: item["resource_dir"] for name, item in self.kernel_table().all_specs.items()}

    def get_all_specs(self) -> dict[str, Any] | Awaitable[dict[str, Any]]:  # type: ignore[override]  # on purpose
        """The specs; on the server's event loop, an awaitable that does the file work in a thread.

        jupyter_server awaits whatever this returns (``ensure_async``), as it does for the gateway's
        asynchronous manager, so a rescan after a change never blocks the loop.
        """
        if _on_event_loop():
            return self._all_specs_off_loop()
        return dict(self.kernel_table().all_specs)

    async def _all_specs_off_loop(self) -> dict[str, Any]:
        table = await asyncio.to_thread(self.kernel_table)
        return dict(table.all_specs)

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """jupyter_client asks for a spec synchronously, on the server's event loop, when a kernel starts: there an
        env kernel the last listing knows is answered from it, without a rescan that may wait for a hung mount; the
        provisioner its spec names reads the env again at launch (and says so if it was deleted meanwhile)."""
        known: tuple[KernelTable, str | None] | None = self._known_env_kernel(kernel_name) if _on_event_loop() else None
        if known is None:
            table = self.kernel_table()
            known = table, table.resolve(kernel_name)
        table, name = known
        if name is None:
            raise NoSuchKernel(kernel_name)
        item = table.all_specs[name]
        return self.kernel_spec_class(resource_dir=item["resource_dir"], **item["spec"])

    def _known_env_kernel(self, kernel_name: str) -> tuple[KernelTable, str] | None:
        """The last table and its name for an env kernel that the provisioner re-reads at launch, else ``None``."""
        with self._lock:
            table = self._table
        name = table.resolve(kernel_name)
        entry = table.entries.get(name) if name is not None else None
        if name is not None and entry is not None and layenv_provisioner(entry.spec) is not None:
            return table, name
        return None

    def listing(self) -> dict[str, Any]:
        """``{"environments": [...], "skipped": [...]}`` as the REST API and ``jupyter layenv list`` print it."""
        return listing_json(*self.current())
