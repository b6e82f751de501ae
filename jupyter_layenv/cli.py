"""``jupyter layenv …``: the same discovery and kernels as the server, from a terminal."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
from typing import Any

from jupyter_core.application import JupyterApp
from jupyter_core.paths import jupyter_data_dir
from jupyter_events.logger import EventLogger
from traitlets import Bool, Enum, Int, List, TraitError, Unicode, default
from traitlets.config import Application

from ._version import __version__
from .cliwords import (
    STANDARD_OPTIONS,
    CliError,
    ExitCode,
    check_options,
    did_you_mean,
    job_failed_line,
    report,
    trait_error_words,
)
from .condabase import first_base_hint, has_conda_env
from .events import Audit
from .kernels import SYNC_MARKER, group_name
from .kernelspecs import LayenvKernelSpecManager
from .policy import LayenvPolicy, PolicyError, human_bytes
from .service import LayenvService, account_name
from .usage import health


class _LayenvCommand(JupyterApp):
    """Reads the server's config files too, so ``--LayenvKernelSpecManager.x`` and config agree with the server."""

    version = __version__
    json_output = Bool(False, config=True, help="Print JSON.")
    kernel_spec_manager_class = Unicode(
        "",
        config=True,
        help="Not used by these commands: nb_conda_kernels and others set it for every Jupyter app "
        "(JupyterApp.kernel_spec_manager_class); `doctor` reports it.",
    )

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.WARNING  # what discovery logs, the commands print

    flags = {"json": ({"_LayenvCommand": {"json_output": True}}, "Print JSON.")}
    classes = [LayenvKernelSpecManager]

    def initialize(self, argv: Any = None) -> None:
        """A bad config file value is refused in CLI words, exit code 2, not as a CRITICAL log line."""
        try:
            JupyterApp.initialize.__wrapped__(self, argv)  # type: ignore[attr-defined]
        except TraitError as err:
            report(CliError(trait_error_words(str(err), self.aliases)))

    def parse_command_line(self, argv: Any = None) -> None:
        """Bad options and values are refused in CLI words, exit code 2 (not argparse's usage, not a CRITICAL)."""
        try:
            flat_flags, flat_aliases = self.flatten_flags()  # what traitlets will accept, as it names them
            aliases = {n for key in flat_aliases for n in ((key,) if isinstance(key, str) else key)}
            flags = {n for key in flat_flags for n in ((key,) if isinstance(key, str) else key)}
            value_options = {f"-{n}" if len(n) == 1 else f"--{n}" for n in aliases}
            known = aliases | flags | STANDARD_OPTIONS
            argv = check_options(list(sys.argv[1:] if argv is None else argv), value_options, known)
            JupyterApp.parse_command_line.__wrapped__(self, argv)  # type: ignore[attr-defined]
        except TraitError as err:
            report(CliError(trait_error_words(str(err), self.aliases)))
        except CliError as err:
            report(err)

    def load_config_file(self, suppress_errors: bool = True) -> None:  # type: ignore[override]
        super().load_config_file(suppress_errors=suppress_errors)
        for path in self.config_file_paths:
            for ext in ("json", "py"):
                if os.path.isfile(os.path.join(path, f"jupyter_server_config.{ext}")):
                    Application.load_config_file(self, f"jupyter_server_config.{ext}", path=path)
                    break
        # The command line wins over the files, as in the server.
        self.update_config(self.cli_config)

    def manager(self) -> LayenvKernelSpecManager:
        return LayenvKernelSpecManager(parent=self)

    def emit(self, data: Any) -> None:
        print(json.dumps(data, indent=2, ensure_ascii=False))


class DoctorApp(_LayenvCommand):
    name = "jupyter-layenv-doctor"
    description = "Explain what discovery looked at, what it found, what it skipped and why."

    def start(self) -> None:
        ksm = self.manager()
        listing = ksm.listing()
        issues = health.of_all(ksm.current()[0])
        for env in listing["environments"]:
            env["health"] = [issue.json() for issue in issues.get(env["id"], [])]
        report = {
            "locations": _locations(ksm),
            "shared_roots": _shared_roots(ksm),
            **listing,
            "kernel_spec_manager": _server_ksm_report(self),
        }
        if not has_conda_env(ksm.current()[0]):
            report["hint"] = first_base_hint("cli")
        if self.json_output:
            self.emit(report)
            return
        print("Where discovery looked:")
        for loc in report["locations"]:
            print(f"  {'found  ' if loc['exists'] else 'absent '} {loc['kind']:<18} {loc['path']}")
        for root in report["shared_roots"]:
            access = "writable" if root["writable"] else "read-only"
            if root["scope"] == "group":
                member = "member" if root["member"] else "NOT a member: not listed"
                access = f"group {root['group']}, {member}, {access}"
            print(f"  found   {root['scope'] + ' root':<18} {root['path']}  [{root['id']}: {access}]")
        print()
        print(render_listing(report))
        server = report["kernel_spec_manager"]
        print()
        print(f"Server kernel spec manager: {server['message']}")


class SyncApp(_LayenvCommand):
    name = "jupyter-layenv-sync"
    description = (
        "Write the env kernelspecs to disk for tools that do not load the server extension "
        "(nbconvert, papermill, voila), and remove stale ones written earlier."
    )
    user = Bool(True, config=True, help="Write to the user's Jupyter data dir (default).")
    sys_prefix = Bool(False, config=True, help="Write to sys.prefix/share/jupyter/kernels.")
    flags = {
        "user": ({"SyncApp": {"user": True, "sys_prefix": False}}, "Install for this user (default)."),
        "sys-prefix": ({"SyncApp": {"sys_prefix": True, "user": False}}, "Install into sys.prefix."),
        "json": ({"_LayenvCommand": {"json_output": True}}, "Print JSON."),
    }

    def start(self) -> None:
        target = (
            os.path.join(sys.prefix, "share", "jupyter", "kernels")
            if self.sys_prefix
            else os.path.join(jupyter_data_dir(), "kernels")
        )
        written, removed = sync_kernelspecs(self.manager(), target)
        if self.json_output:
            self.emit({"directory": target, "written": written, "removed": removed})
            return
        print(f"{len(written)} kernelspec(s) written to {target}; {len(removed)} stale one(s) removed.")
        for name in removed:
            print(f"  removed {name}")


def sync_kernelspecs(ksm: LayenvKernelSpecManager, target: str) -> tuple[list[str], list[str]]:
    """Write every env kernel to ``target``; remove only the ones this command wrote earlier.

    The names nb_conda_kernels gave the same kernels (``conda-env-<env>-py``) are written too, so a notebook saved
    with one runs in nbconvert or papermill; a kernelspec of that name this command did not write is left alone.
    """
    table = ksm.kernel_table()
    os.makedirs(target, exist_ok=True)
    wanted = {name: (entry, None) for name, entry in table.entries.items()}
    for alias, name in table.nb_conda_aliases.items():
        if alias not in wanted and name in table.entries and _ours_or_absent(os.path.join(target, alias)):
            wanted[alias] = (table.entries[name], name)
    written = []
    for name, (entry, alias_of) in sorted(wanted.items()):
        directory = os.path.join(target, name)
        os.makedirs(directory, exist_ok=True)
        for logo in os.listdir(entry.resource_dir) if os.path.isdir(entry.resource_dir) else []:
            if logo.startswith("logo-"):
                shutil.copyfile(os.path.join(entry.resource_dir, logo), os.path.join(directory, logo))
        metadata = {**entry.spec.get("metadata", {}), SYNC_MARKER: True, **({"alias_of": alias_of} if alias_of else {})}
        with open(os.path.join(directory, "kernel.json"), "w", encoding="utf-8") as handle:
            json.dump({**entry.spec, "metadata": metadata}, handle, indent=1, ensure_ascii=False)
        written.append(name)
    removed = []
    for name in sorted(os.listdir(target)):
        if name not in wanted and _synced_here(os.path.join(target, name)):
            shutil.rmtree(os.path.join(target, name))
            removed.append(name)
    return written, removed


def _synced_here(directory: str) -> bool:
    """A kernelspec ``jupyter layenv sync`` wrote (its marker in the metadata)."""
    try:
        with open(os.path.join(directory, "kernel.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(spec, dict) and bool((spec.get("metadata") or {}).get(SYNC_MARKER))


def _ours_or_absent(directory: str) -> bool:
    return not os.path.lexists(directory) or _synced_here(directory)


def render_listing(listing: dict[str, Any], *, health_detail: bool = True) -> str:
    """Environments as a tree by base, each with its kernels or the reason it has none, and its health issues
    (``health_detail``: each with what to do, as ``doctor`` prints them; else one short line)."""
    envs = listing["environments"]
    by_path = {env["path"]: env for env in envs}
    children: dict[str, list[dict]] = {}
    roots = []
    for env in envs:
        if env["base"] in by_path:
            children.setdefault(env["base"], []).append(env)
        else:
            roots.append(env)
    lines = []

    def show(env: dict, depth: int) -> None:
        indent = "  " * depth + ("└ " if depth else "")
        scope = f"group {env['group']}" if env["scope"] == "group" else env["scope"]
        flags = [env["kind"], f"Python {env['python_version'] or '?'}", scope]
        if not env["writable"]:
            flags.append("read-only")
        head = f"{indent}{env['name']}  [{', '.join(flags)}]"
        lines.append(f"{head}  {env['path']}")
        pad = "  " * (depth + 2)
        for kernel in env["kernels"]:
            lines.append(f"{pad}kernel {kernel['name']}: {kernel['display_name']}")
        if not env["kernels"]:
            lines.append(f"{pad}not a kernel: {env['skipped_reason'] or 'no kernel'}")
        issues = env.get("health") or []
        if health_detail:
            lines.extend(f"{pad}{issue['kind']}: {issue['message']}" for issue in issues)
        elif issues:
            named = ", ".join(f"{issue['kind']} {issue['package'] or ''}".strip() for issue in issues)
            count = f"{len(issues)} issue{'s' if len(issues) > 1 else ''}"
            lines.append(f"{pad}health: {count} ({named}); `jupyter layenv doctor` says what to do")
        for child in children.get(env["path"], []):
            show(child, depth + 1)

    for env in roots:
        show(env, 0)
    if listing["skipped"]:
        lines.append("")
        lines.append("Skipped (not usable environments):")
        lines.extend(f"  {skip['path']}: {skip['reason']}" for skip in listing["skipped"])
    if listing.get("hint"):
        lines += ["", listing["hint"]]
    return "\n".join(lines) if lines else "No environments found. Run `jupyter layenv doctor` to see where it looked."


def _locations(ksm: LayenvKernelSpecManager) -> list[dict[str, Any]]:
    cfg = ksm.discovery.config
    kinds = [
        ("conda root", cfg.conda_roots),
        ("envs dir", cfg.envs_dirs),
        ("environments.txt", cfg.environments_files),
        ("condarc", cfg.condarc_paths),
        ("venv root", cfg.venv_roots),
        ("env path", cfg.env_paths),
        ("system root", cfg.system_roots),
        ("group root (glob)", cfg.group_roots),
    ]
    return [{"kind": kind, "path": path, "exists": os.path.exists(path)} for kind, paths in kinds for path in paths]


def _shared_roots(ksm: LayenvKernelSpecManager) -> list[dict[str, Any]]:
    """The system and group roots found, with what the filesystem says about them for this user."""
    discovered, _ = ksm.current()
    return [
        {
            "id": root.id,
            "scope": root.scope,
            "path": root.path,
            "group": group_name(root.gid),
            "member": root.member,
            "writable": root.writable,
        }
        for root in discovered.roots
    ]


def _server_ksm_report(app: JupyterApp) -> dict[str, Any]:
    config = app.config
    for section in ("ServerApp", "NotebookApp", "JupyterApp"):
        if section in config and "kernel_spec_manager_class" in config[section]:
            value = str(config[section]["kernel_spec_manager_class"])
            ours = value.startswith("jupyter_layenv")
            return {
                "ours": ours,
                "message": f"{value} (set by {section}.kernel_spec_manager_class)"
                + (
                    ""
                    if ours
                    else "; env kernels will NOT be listed: remove that setting (for nb_conda_kernels: "
                    "`python -m nb_conda_kernels uninstall`) or set "
                    "c.ServerApp.kernel_spec_manager_class = 'jupyter_layenv.LayenvKernelSpecManager'"
                ),
            }
    return {
        "ours": True,
        "message": "jupyter_layenv.LayenvKernelSpecManager (set by the jupyter_layenv server extension)",
    }


class _ServiceCommand(_LayenvCommand):
    """A command that goes through the same service (and rules) as the REST API."""

    classes = [LayenvKernelSpecManager, LayenvService, LayenvPolicy]

    def service(self) -> LayenvService:
        """The service, auditing to the handlers the server's config gives its event logger
        (``c.EventLogger.handlers``): what a command removes or makes is in the same trail as the server's."""
        return LayenvService(parent=self, ksm=self.manager(), audit=Audit(EventLogger(parent=self)))

    def the_name(self) -> str:
        if len(self.extra_args) != 1:
            given = f"got {len(self.extra_args)}: {' '.join(self.extra_args)}" if self.extra_args else "got none"
            raise CliError(f"give exactly one environment NAME ({given}; see --help)")
        return self.extra_args[0]

    def run(self, work: Any) -> Any:
        """Run a service coroutine; a refusal is printed once in CLI words, with its exit code (see cliwords)."""
        try:
            return asyncio.run(work)
        except PolicyError as err:
            report(err)


class ListApp(_ServiceCommand):
    name = "jupyter-layenv-list"
    description = "List every environment found, grouped by base, with its kernels or why it has none."

    def start(self) -> None:
        listing = self.service().listing_now(wait_health=True)  # the JSON of GET environments, every env checked
        if "hint" in listing:
            listing["hint"] = first_base_hint("cli")  # in the CLI's words
        if self.json_output:
            self.emit(listing)
            return
        print(render_listing(listing, health_detail=False))


class CreateApp(_ServiceCommand):
    name = "jupyter-layenv-create"
    description = (
        "Create a layered environment NAME on a Conda env, or with --conda a Conda env (a base) solved and installed "
        "by py-rattler; a progress bar and the live install log."
    )
    examples = (
        "jupyter layenv create myexp --base conda-py311_ai --package flask --package 'requests>=2'\n"
        "jupyter layenv create myexp --file environment.yml\n"
        "jupyter layenv create py311 --conda python=3.11 --conda numpy"
    )
    base = Unicode("", config=True, help="The base Conda env: its id (see `jupyter layenv list`) or path.")
    packages = List(Unicode(), config=True, help="A package spec to install (repeat for more).")
    requirements_file = Unicode("", config=True, help="A requirements.txt whose lines are installed too.")
    environment_file = Unicode(
        "", config=True, help="An environment.yml: its Conda dependencies pick the base, its pip section is the layer."
    )
    display_name = Unicode(None, allow_none=True, config=True, help="The kernel's display name.")
    inherit = Bool(True, config=True, help="Inherit the base's packages (--system-site-packages).")
    root = Unicode(
        "user", config=True, help="Where to create it: 'user' (your root) or a group root's id, like group:physics."
    )
    conda = List(
        Unicode(),
        config=True,
        help="Create a Conda env (a base) instead of a layer, from these Conda match specs: --conda python=3.11 numpy",
    )
    no_ipykernel = Bool(False, config=True, help="With --conda: do not add ipykernel (the env is then not a kernel).")
    build_base = Bool(
        False,
        config=True,
        help="With --file: when no known Conda env satisfies the file, build one first (NAME-base, from the "
        "configured channels), then the layer on it.",
    )
    aliases = {
        "conda": "CreateApp.conda",
        "base": "CreateApp.base",
        "root": "CreateApp.root",
        "package": "CreateApp.packages",
        ("r", "requirements"): "CreateApp.requirements_file",
        ("f", "file"): "CreateApp.environment_file",
        "display-name": "CreateApp.display_name",
    }
    flags = {
        "no-inherit": ({"CreateApp": {"inherit": False}}, "Do not inherit the base's packages."),
        "no-ipykernel": ({"CreateApp": {"no_ipykernel": True}}, "With --conda: do not add ipykernel."),
        "build-base": ({"CreateApp": {"build_base": True}}, "With --file: build the base first when none fits."),
        "json": ({"_LayenvCommand": {"json_output": True}}, "Print the finished job as JSON."),
    }

    def start(self) -> None:
        if self.conda:
            conda: dict[str, Any] = {"kind": "conda", "name": self.the_name(), "packages": list(self.conda),
                                     "ipykernel": not self.no_ipykernel, "root": self.root}  # fmt: skip
            job = self.run(self._create(conda))
            if self.json_output:
                self.emit(job)
            self.exit(ExitCode.OK if job["state"] == "succeeded" else ExitCode.FAILED)
        if self.environment_file:
            body = self._from_file()
        else:
            body = {"name": self.the_name(), "base": self.base, "packages": list(self.packages),
                    "inherit": self.inherit, "root": self.root}  # fmt: skip
        if self.requirements_file and not self.environment_file:
            try:
                with open(self.requirements_file, encoding="utf-8") as handle:
                    body["requirements"] = handle.read()
            except (OSError, UnicodeDecodeError) as err:
                raise CliError(f"-r {self.requirements_file}: cannot read it ({err})") from None
        if self.display_name is not None:
            body["display_name"] = self.display_name
        job = self.run(self._create(body))
        if self.json_output:
            self.emit(job)
        self.exit(ExitCode.OK if job["state"] == "succeeded" else ExitCode.FAILED)

    def _from_file(self) -> dict[str, Any]:
        """``--file``: the environment.yml picks the base; NAME, when given, overrides the file's ``name:``."""
        if self.base or self.packages or self.requirements_file:
            raise CliError(
                "--file replaces --base, --package and -r: the file names the base's packages and the layer's"
            )
        if len(self.extra_args) > 1:
            raise CliError("give at most one environment name with --file (without one, the file's name: is used)")
        try:
            with open(self.environment_file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as err:
            raise CliError(f"--file {self.environment_file}: cannot read it ({err})") from None
        body: dict[str, Any] = {"environment_yml": text, "inherit": self.inherit, "root": self.root}
        if self.build_base:
            body["build_base"] = True
        if self.extra_args:
            body["name"] = self.extra_args[0]
        return body

    async def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        service = self.service()
        job = await service.create(body, account_name())
        await follow_job(service, job, self.json_output)
        then = job.public().get("then")
        if job.state == "succeeded" and then and then["error"]:
            raise CliError(then["error"], ExitCode.FAILED)
        if job.state == "succeeded" and then and then["job"]:  # --build-base: the base is there, now the layer
            if not self.json_output:
                print(f"created the base {job.path}; now the layer {then['name']} on it", file=sys.stderr)
            job = await service.job(then["job"])
            await follow_job(service, job, self.json_output)
        if not self.json_output:
            if job.state == "succeeded" and job.environment:
                kernels = ", ".join(k["name"] for k in job.environment["kernels"])
                print(f"created {job.path}; kernel {kernels}", file=sys.stderr)
            else:  # the installer's output is in the log above: its first line only, not all of it again
                print(job_failed_line(job.state, job.error), file=sys.stderr)
        return job.public()


async def follow_job(service: LayenvService, job: Any, quiet: bool) -> None:
    """Print a job's live log (unless ``quiet``) with a progress bar until it ends; Ctrl-C cancels it."""
    offset = 0
    try:
        while True:
            data = await service.job_log(job.id, offset)
            offset += len(data)
            if data and not quiet:
                _clear_bar()
                sys.stdout.write(data.decode("utf-8", "replace"))
                sys.stdout.flush()
            if job.state not in ("queued", "running"):
                break
            _progress_bar(job.progress, job.step)
            await asyncio.sleep(0.1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        await service.cancel(job.id, account_name())
    _progress_bar(job.progress, job.step)  # where it ended, left on screen
    if sys.stderr.isatty():
        sys.stderr.write("\n")


def _clear_bar() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")


def _progress_bar(progress: float, step: str, width: int = 30) -> None:
    if not sys.stderr.isatty():
        return
    done = int(progress * width)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {progress:4.0%} {step}")
    sys.stderr.flush()


class DeleteApp(_ServiceCommand):
    name = "jupyter-layenv-delete"
    description = (
        "Delete the environment NAME (an id, a path or a unique name): a layer, a venv or a Conda env of yours with "
        "no layers on it; and its synced kernels."
    )

    def start(self) -> None:
        ref = self.the_name()

        async def delete() -> None:
            service = self.service()
            await service.delete(await service.resolve(ref), account_name())

        self.run(delete())
        print(f"deleted {ref}", file=sys.stderr)


class ExportApp(_ServiceCommand):
    name = "jupyter-layenv-export"
    description = (
        "Print environment NAME as environment.yml (base + pip layer), requirements.txt (the layer), "
        "explicit (a Conda env's @EXPLICIT spec: package URLs with md5) or lock (the exact layer, with hashes)."
    )
    format = Enum(
        ["environment.yml", "requirements.txt", "explicit", "lock"],
        "environment.yml",
        config=True,
        help="What to print.",
    )
    aliases = {"format": "ExportApp.format"}

    def start(self) -> None:
        ref = self.the_name()

        async def export() -> str:
            service = self.service()
            _, text = await service.export(await service.resolve(ref), self.format, account_name())
            return text

        sys.stdout.write(self.run(export()))


class CleanApp(_ServiceCommand):
    name = "jupyter-layenv-clean"
    description = (
        "Remove your layers, venvs and the Conda envs jupyter_layenv made that started no kernel for N days (never a "
        "base with layers, one a kernel "
        "runs from or a job works on), then prune uv's and py-rattler's package caches of what no environment links; "
        "prints the bytes freed."
    )
    examples = "jupyter layenv clean --unused-days 60 --dry-run"
    unused_days = Int(90, config=True, help="Remove environments that started no kernel for this many days.")
    dry_run = Bool(False, config=True, help="Only say what would be removed and freed.")
    aliases = {"unused-days": "CleanApp.unused_days"}
    flags = {
        "dry-run": ({"CleanApp": {"dry_run": True}}, "Only say what would be removed and freed."),
        "json": ({"_LayenvCommand": {"json_output": True}}, "Print the report as JSON."),
    }

    def start(self) -> None:
        body = {"unused_days": self.unused_days, "dry_run": self.dry_run}
        report = self.run(self.service().housekeeping.clean(body, account_name()))
        if self.json_output:
            self.emit(report)
            return
        verb = "would remove" if self.dry_run else "removed"
        for env in report["removed"]:
            used = f"last kernel {env['last_used']}" if env["last_used"] else "never started a kernel"
            print(f"{verb} {env['id']}  {human_bytes(env['size_bytes'])}  ({used})  {env['path']}")
        for env in report["kept"]:
            print(f"kept {env['id']}: {env['reason']}")
        for cache in report["caches"]:
            if cache["skipped"]:
                print(f"{cache['cache']}: not pruned: {cache['skipped']}")
            else:
                print(f"{cache['cache']}: {verb} {cache['entries']} package(s) no environment links")
        if not report["removed"] and not report["kept"]:
            print(f"none of your environments is unused for {self.unused_days} days")
        print(f"{'would free' if self.dry_run else 'freed'} {human_bytes(report['bytes_freed'])}")


class LayenvApp(JupyterApp):
    name = "jupyter-layenv"
    version = __version__
    description = "Layered Conda + virtualenv environments as Jupyter kernels."
    subcommands = {
        "list": (ListApp, ListApp.description),
        "doctor": (DoctorApp, DoctorApp.description),
        "sync": (SyncApp, SyncApp.description),
        "create": (CreateApp, CreateApp.description),
        "delete": (DeleteApp, DeleteApp.description),
        "export": (ExportApp, ExportApp.description),
        "install": ("jupyter_layenv.cli_lifecycle.InstallApp", "Add packages to a layer (only what its base lacks)."),
        "uninstall": ("jupyter_layenv.cli_lifecycle.UninstallApp", "Remove packages from a layer."),
        "history": ("jupyter_layenv.cli_lifecycle.HistoryApp", "A layer's revisions, newest first."),
        "rollback": ("jupyter_layenv.cli_lifecycle.RollbackApp", "Put a layer back to one of its revisions."),
        "clean": (CleanApp, CleanApp.description.split(" (")[0] + "."),
    }

    def start(self) -> None:
        if self.subapp is None:
            if self.extra_args:
                word = self.extra_args[0]
                report(CliError(f"unknown command {word!r}{did_you_mean(word, list(self.subcommands))}; "
                                f"the commands are {', '.join(self.subcommands)}"))  # fmt: skip
            self.print_help()
            print("Commands: " + ", ".join(self.subcommands))
            self.exit(ExitCode.USAGE)
        try:
            super().start()
        except (CliError, PolicyError) as err:  # any command may raise them: printed once, its exit code
            report(err)


main = LayenvApp.launch_instance

if __name__ == "__main__":
    main()
