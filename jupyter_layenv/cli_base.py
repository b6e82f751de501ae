"""What every ``jupyter layenv`` command shares: the server's config, bad options refused in CLI words, the
service the REST API uses, and a job followed live with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from contextvars import ContextVar
from typing import Any

from jupyter_core.application import JupyterApp
from jupyter_events.logger import EventLogger
from traitlets import Bool, TraitError, Unicode, default
from traitlets.config import Application

from . import ctrlc
from ._version import __version__
from .clitext import json_text
from .cliwords import STANDARD_OPTIONS, CliError, ExitCode, check_options, report, trait_error_words
from .create.jobs import Job
from .events import Audit
from .identity import account_name
from .kernelspecs import LayenvKernelSpecManager
from .policy import LayenvPolicy, PolicyError
from .service import LayenvService


class LayenvCommand(JupyterApp):
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

    flags = {"json": ({"LayenvCommand": {"json_output": True}}, "Print JSON.")}
    classes = [LayenvKernelSpecManager]
    takes_names = True  # False: a command over every environment (list, doctor, sync, clean)

    def initialize(self, argv: Any = None) -> None:
        """A bad config file value is refused in CLI words, exit code 2, not as a CRITICAL log line; so is a NAME
        given to a command that covers every env (`sync myexp` synced them all, `list myexp` listed them all)."""
        try:
            JupyterApp.initialize.__wrapped__(self, argv)  # type: ignore[attr-defined]
        except TraitError as err:
            report(CliError(trait_error_words(str(err), self.aliases)))
        if not self.takes_names and self.extra_args:
            command = self.name.rsplit("-", 1)[-1]
            report(CliError(f"`jupyter layenv {command}` takes no NAME (got {' '.join(self.extra_args)}): it covers "
                            "every environment (see --help)"))  # fmt: skip

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
        return LayenvKernelSpecManager(parent=self, change_notifications=False)  # one listing: nothing to watch

    def emit(self, data: Any) -> None:
        print(json_text(data, indent=2))


# Set by Ctrl-C while a command that makes or changes an env runs: the job it follows is cancelled (see run).
_CTRL_C: ContextVar[asyncio.Event | None] = ContextVar("layenv_ctrl_c", default=None)


class ServiceCommand(LayenvCommand):
    """A command that goes through the same service (and rules) as the REST API."""

    classes = [LayenvKernelSpecManager, LayenvService, LayenvPolicy]
    # Ctrl-C cancels the work where it is (a listing, an export, a cleanup between two envs); a command that makes,
    # changes or deletes an env sets it False: Ctrl-C then cancels the job it follows (queued already, or as soon as
    # it is), which puts everything back, and one that comes once the job has ended changes nothing.
    ctrl_c_cancels_work = True

    def service(self) -> LayenvService:
        """The service, auditing to the handlers the server's config gives its event logger
        (``c.EventLogger.handlers``): what a command removes or makes is in the same trail as the server's."""
        return LayenvService(parent=self, ksm=self.manager(), audit=Audit(EventLogger(parent=self)))

    def the_name(self) -> str:
        if len(self.extra_args) != 1:
            if not self.extra_args:
                raise CliError("give exactly one environment NAME (got none; see --help)")
            given = f"got {len(self.extra_args)}: {' '.join(self.extra_args)}"
            raise CliError(f"give exactly one environment NAME ({given}; an option takes one value: repeat it for "
                           "more, as in --package a --package b; see --help)")  # fmt: skip
        return self.extra_args[0]

    def run(self, work: Any) -> Any:
        """Run a service coroutine; a refusal is printed once in CLI words, with its exit code (see cliwords).
        Ctrl-C while it runs: see ``ctrl_c_cancels_work`` (and ``ctrlc``)."""
        try:
            return asyncio.run(self._under_ctrl_c(work))
        except PolicyError as err:
            report(err)
        except asyncio.CancelledError:  # Ctrl-C cancelled the work where it was
            report(CliError("interrupted", ExitCode.FAILED))

    async def _under_ctrl_c(self, work: Any) -> Any:
        pressed = asyncio.Event()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def ctrl_c() -> None:
            pressed.set()
            if self.ctrl_c_cancels_work and task is not None:
                task.cancel()

        _CTRL_C.set(pressed)
        with ctrlc.handled_by(lambda: loop.call_soon_threadsafe(ctrl_c)):  # from the signal handler: scheduled
            return await work


async def follow_job(service: LayenvService, job: Job, quiet: bool) -> None:
    """Print a job's live log (unless ``quiet``) with a progress bar until it ends; Ctrl-C cancels it."""
    offset = 0
    pressed = _CTRL_C.get()
    try:
        while True:
            if pressed is not None and pressed.is_set() and job.state in ("queued", "running"):
                raise asyncio.CancelledError  # Ctrl-C, now or while the job was being made
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
    except asyncio.CancelledError:
        with contextlib.suppress(PolicyError):  # it ended meanwhile ("already succeeded"): its outcome stands
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
