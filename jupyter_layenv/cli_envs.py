"""``jupyter layenv create|delete|export|clean``: making, removing and exporting environments from a terminal."""

from __future__ import annotations

import sys
from typing import Any

from traitlets import Bool, Enum, Int, List, Unicode

from .cli_base import ServiceCommand, follow_job
from .cliwords import CliError, ExitCode, cli_words, job_failed_line
from .identity import account_name
from .policy import human_bytes


class CreateApp(ServiceCommand):
    ctrl_c_cancels_work = False  # see ServiceCommand
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
        help="Create a Conda env (a base) instead of a layer, from this Conda match spec (repeat for more: --conda "
        "python=3.11 --conda numpy).",
    )
    no_ipykernel = Bool(False, config=True, help="With --conda: do not add ipykernel (the env is then not a kernel).")
    build_base = Bool(
        False,
        config=True,
        help="With --file: when no known Conda env satisfies the file, build one first (NAME-base, from the "
        "configured channels), then the layer on it.",
    )
    # keys are option names, or tuples of them (one trait, two spellings); traitlets declares only the former
    aliases: dict[Any, str] = {
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
        "json": ({"LayenvCommand": {"json_output": True}}, "Print the finished job as JSON."),
    }

    def _check_combination(self) -> None:
        """Options that do not apply to the kind of create asked for are refused, not silently dropped (a
        ``--package numpy`` beside ``--conda`` made the env without numpy)."""
        if self.conda:
            stray = [option for option, given in (
                ("--base", self.base), ("--package", self.packages), ("-r", self.requirements_file),
                ("--file", self.environment_file), ("--display-name", self.display_name is not None),
                ("--no-inherit", not self.inherit), ("--build-base", self.build_base),
            ) if given]  # fmt: skip
            if stray:
                raise CliError(f"--conda makes a Conda env from Conda specs alone: {', '.join(stray)} "
                               f"{'does' if len(stray) == 1 else 'do'} not apply to it (repeat --conda for each "
                               "spec; build a layer on it afterwards with --base)")  # fmt: skip
        elif self.no_ipykernel:
            raise CliError("--no-ipykernel goes with --conda (a layer is always a kernel)")
        if self.build_base and not self.environment_file:
            raise CliError("--build-base goes with --file: it builds the base an environment.yml needs")

    def start(self) -> None:
        self._check_combination()
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
            raise CliError(cli_words(then["error"]), ExitCode.FAILED)
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


class DeleteApp(ServiceCommand):
    ctrl_c_cancels_work = False  # see ServiceCommand
    name = "jupyter-layenv-delete"
    description = (
        "Delete the environment NAME (an id, a path or a unique name): a layer, a venv or a Conda env of yours with "
        "no layers on it; and its synced kernels. Refused while a kernel runs from it (unless --force)."
    )
    force = Bool(False, config=True, help="Delete it even while kernels run from it (they go on from deleted files).")
    flags = {
        "force": ({"DeleteApp": {"force": True}}, "Delete it even while kernels run from it."),
        "json": ({"LayenvCommand": {"json_output": True}}, "Print JSON."),
    }

    def start(self) -> None:
        ref = self.the_name()

        async def delete() -> dict[str, str]:
            service = self.service()
            env_id = await service.resolve(ref)
            return {"id": env_id, "path": await service.delete(env_id, account_name(), kernels=not self.force)}

        deleted = self.run(delete())
        if self.json_output:
            self.emit({"deleted": deleted})
            return
        print(f"deleted {ref}", file=sys.stderr)


class ExportApp(ServiceCommand):
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
        if self.json_output:
            raise CliError("--json does not apply to export: it prints the file itself (redirect it: > FILE)")
        ref = self.the_name()

        async def export() -> str:
            service = self.service()
            _, text = await service.export(await service.resolve(ref), self.format, account_name())
            return text

        sys.stdout.write(self.run(export()))


class CleanApp(ServiceCommand):
    takes_names = False
    name = "jupyter-layenv-clean"
    description = (
        "Remove the layers, venvs and Conda envs jupyter_layenv made for you that started no kernel for N days (never "
        "one another tool made, a base with layers, one a kernel "
        "runs from or a job works on), then prune uv's and py-rattler's package caches of what no environment links; "
        "prints the bytes freed."
    )
    examples = "jupyter layenv clean --unused-days 60 --dry-run"
    unused_days = Int(90, config=True, help="Remove environments that started no kernel for this many days.")
    dry_run = Bool(False, config=True, help="Only say what would be removed and freed.")
    aliases = {"unused-days": "CleanApp.unused_days"}
    flags = {
        "dry-run": ({"CleanApp": {"dry_run": True}}, "Only say what would be removed and freed."),
        "json": ({"LayenvCommand": {"json_output": True}}, "Print the report as JSON."),
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
