"""Command lines of the package installers: uv when available (about ten times faster), pip otherwise.

Packages never appear on these command lines: they go through a requirements file written after validation.
Index, find-links, offline mode and proxy come from the administrator's configuration only.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class InstallerSettings:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    offline: bool = False  # no index at all: only find-links (a local wheelhouse)
    proxy: str | None = None


def find_uv() -> str | None:
    """The uv binary installed with this package (the ``uv`` wheel), else one on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def source_options(settings: InstallerSettings) -> list[str]:
    options: list[str] = []
    if settings.offline:
        options.append("--no-index")
    else:
        if settings.index_url:
            options += ["--index-url", settings.index_url]
        for url in settings.extra_index_urls:
            options += ["--extra-index-url", url]
    for link in settings.find_links:
        options += ["--find-links", link]
    return options


# The flags each allowed request option stands for: a request picks a name, these tokens go on the command line.
_OPTION_FLAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "--pre": {"uv": ("--prerelease", "allow"), "pip": ("--pre",)},
    "--no-deps": {"uv": ("--no-deps",), "pip": ("--no-deps",)},
}


def option_flags(tool: str, options: tuple[str, ...]) -> list[str]:
    return [flag for option in options for flag in _OPTION_FLAGS[option][tool]]


def uv_command(
    uv: str, python: str, requirements_file: str, settings: InstallerSettings, options: tuple[str, ...] = ()
) -> list[str]:
    # --no-config: a uv.toml or pyproject.toml near the server's working directory must not change the index.
    offline = ["--offline"] if settings.offline else []
    return [uv, "pip", "install", "--no-config", "--python", python, *offline, *source_options(settings),
            *option_flags("uv", options), "-r", requirements_file]  # fmt: skip


def pip_command(
    python: str, requirements_file: str, settings: InstallerSettings, options: tuple[str, ...] = ()
) -> list[str]:
    # --isolated: pip.conf and PIP_* variables must not change the index either.
    return [python, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-input",
            *source_options(settings), *option_flags("pip", options), "-r", requirements_file]  # fmt: skip


def installer_environment(settings: InstallerSettings) -> dict[str, str]:
    """The server's environment without what would point the installer at another Python, plus the proxy."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    if settings.proxy:
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env[key] = settings.proxy
    return env
