"""``jupyter layenv …``: the same discovery and kernels as the server, from a terminal. The commands live in
``cli_listing``, ``cli_sync``, ``cli_envs`` and ``cli_lifecycle``; this wires them into one app."""

from __future__ import annotations

from . import ctrlc

ctrlc.install()  # before the commands load (a second or more on a busy machine): Ctrl-C then is one line, no traceback

from jupyter_core.application import JupyterApp  # noqa: E402

from ._version import __version__  # noqa: E402
from .cli_envs import CleanApp, CreateApp, DeleteApp, ExportApp  # noqa: E402
from .cli_listing import DoctorApp, ListApp  # noqa: E402
from .cli_sync import SyncApp  # noqa: E402
from .cliwords import CliError, ExitCode, did_you_mean, report  # noqa: E402
from .policy import PolicyError  # noqa: E402


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


def main() -> None:
    """``jupyter layenv``: a Ctrl-C ends it with one ``error: interrupted`` line (exit 1); while a command makes or
    changes an env, it cancels that job instead (see ``ctrlc`` and ``cli_base.ServiceCommand.run``)."""
    LayenvApp.launch_instance()


if __name__ == "__main__":
    main()
