"""``jupyter layenv install|uninstall|history|rollback``: a layer's life after its create, from a terminal.

The same service (and rules) as ``POST environments/<id>/packages``, ``GET …/revisions`` and ``…/restore``.
"""

from __future__ import annotations

import sys
from typing import Any

from traitlets import Bool

from .cli_base import ServiceCommand, follow_job
from .clitext import printable
from .cliwords import CliError, ExitCode, cli_words, job_failed_line
from .identity import account_name


class _LayerCommand(ServiceCommand):
    ctrl_c_cancels_work = False  # see ServiceCommand
    dry_run = Bool(False, config=True, help="Show the plan only; change nothing.")

    def name_and_args(self, what: str) -> tuple[str, list[str]]:
        if len(self.extra_args) < 2:
            raise CliError(f"give the environment's NAME, then {what} (see --help)")
        return self.extra_args[0], list(self.extra_args[1:])

    async def _change(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        service = self.service()
        outcome = await service.lifecycle.change(await service.resolve(ref), body, account_name())
        if outcome.job_id is None:
            return {"plan": outcome.body}
        job = await service.job(outcome.job_id)
        await follow_job(service, job, self.json_output)
        return {"job": job.public()}

    def report(self, ref: str, result: dict[str, Any]) -> None:
        """The plan of a dry run, or how the job ended; exit 1 when it did not succeed."""
        if self.json_output:
            self.emit(result.get("plan") or result["job"])
        elif "plan" in result:
            print(render_plan(result["plan"]))
        else:
            job = result["job"]
            if job["state"] == "succeeded" and job.get("unchanged"):
                print(f"nothing to change in {ref}: it has what was asked already, or its base provides it",
                      file=sys.stderr)  # fmt: skip
            elif job["state"] == "succeeded":
                print(f"changed {ref}; restart its running kernels to use the new packages", file=sys.stderr)
            else:
                print(job_failed_line(job["state"], job["error"]), file=sys.stderr)
        if "job" in result and result["job"]["state"] != "succeeded":
            self.exit(ExitCode.FAILED)


def render_plan(plan: dict[str, Any]) -> str:
    def names(entries: list[dict[str, Any]]) -> str:
        return ", ".join(f"{e['name']} {e['version']}" for e in entries) or "nothing"

    lines = [f"would install: {names(plan['install'])}", f"would remove: {names(plan['remove'])}"]
    if plan["shadow"]:
        lines.append("would shadow the base's: " + ", ".join(
            f"{s['name']} {s['base_version']} -> {s['version']} ({s['reason']})" for s in plan["shadow"]))  # fmt: skip
    lines.append(f"kept from the base: {names(plan['kept_from_base'])}")
    return "\n".join(lines)


class InstallApp(_LayerCommand):
    name = "jupyter-layenv-install"
    description = "Add packages to layer NAME: only what its base lacks is installed (--dry-run: show the plan)."
    examples = "jupyter layenv install myexp 'flask>=3' requests --dry-run"
    flags = {
        "dry-run": ({"_LayerCommand": {"dry_run": True}}, "Show the plan only; change nothing."),
        "json": ({"LayenvCommand": {"json_output": True}}, "Print JSON."),
    }

    def start(self) -> None:
        ref, specs = self.name_and_args("package specs")
        self.report(ref, self.run(self._change(ref, {"add": specs, "dry_run": self.dry_run})))


class UninstallApp(_LayerCommand):
    name = "jupyter-layenv-uninstall"
    description = "Remove packages from layer NAME (refused when other layer packages need them, unless --force)."
    force = Bool(False, config=True, help="Remove even what other packages of the layer need.")
    flags = {
        "dry-run": ({"_LayerCommand": {"dry_run": True}}, "Show the plan only; change nothing."),
        "force": ({"UninstallApp": {"force": True}}, "Remove even what other packages of the layer need."),
        "json": ({"LayenvCommand": {"json_output": True}}, "Print JSON."),
    }

    def start(self) -> None:
        ref, names = self.name_and_args("package names")
        body = {"remove": names, "dry_run": self.dry_run, "force": self.force}
        self.report(ref, self.run(self._change(ref, body)))


class HistoryApp(_LayerCommand):
    name = "jupyter-layenv-history"
    description = "The revisions of layer NAME, newest first: when, who, what was asked, how many packages."

    def start(self) -> None:
        ref = self.the_name()

        async def history() -> dict[str, Any]:
            service = self.service()
            return await service.lifecycle.revisions(await service.resolve(ref))

        answer = self.run(history())
        revisions = answer["revisions"]
        if self.json_output:
            self.emit(revisions)
            return
        for rev in revisions:
            request = rev["request"]
            if request.get("action") == "restore":
                what = f"restore of revision {request.get('revision')}"
            else:
                parts = [f"+{s}" for s in request.get("add") or []] + [f"-{n}" for n in request.get("remove") or []]
                what = f"{request.get('action', '?')} {' '.join(parts)}".strip()
            changed = "  [base changed since]" if rev["base_changed"] else ""
            count = f"{len(rev['lock'])} package{'' if len(rev['lock']) == 1 else 's'}"
            print(printable(f"{rev['revision']:>4}  {rev['created']}  {rev['user']:<12} {what}  ({count}){changed}"))
        if answer["none_reason"]:
            print(cli_words(answer["none_reason"]))


class RollbackApp(_LayerCommand):
    name = "jupyter-layenv-rollback"
    description = "Put layer NAME back to revision REV exactly (see `jupyter layenv history NAME`)."

    def start(self) -> None:
        ref, rest = self.name_and_args("a revision number")
        if len(rest) != 1:
            raise CliError(f"give one revision number REV (see `jupyter layenv history {ref}`)")

        async def rollback() -> dict[str, Any]:
            service = self.service()
            job = await service.lifecycle.restore(await service.resolve(ref), rest[0], account_name())
            await follow_job(service, job, self.json_output)
            return {"job": job.public()}

        self.report(ref, self.run(rollback()))
