"""Asking uv or pip which versions a request needs, with what the layer already sees counted as installed.

uv does not count a ``--system-site-packages`` venv's base as installed, so uv resolves (``uv pip compile``)
with every visible distribution offered as a metadata-only stub wheel on a local find-links directory and
pinned by a constraint: the base's own versions, with their real dependencies, whether or not an index has them.
pip sees the base itself: ``pip install --dry-run --report`` with the layer's Python lists only what is missing.
Request text reaches the tools through files, never their command lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import sys
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .. import fsread
from ..create.installers import InstallerSettings, installer_environment, option_flags, source_options
from ..create.process import error_line, spawn_guarded
from .installed import Installed
from .plan import Pin, ResolveFailed, Resolver

OUTPUT_TAIL = 2000


Runner = Callable[[list[str], dict[str, str]], Awaitable[tuple[int, str]]]  # argv, env -> exit code, output


async def run_captured(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a resolver (no shell, own session led by the guard: it dies with the server), its output captured;
    killed with its group when cancelled."""
    proc = await spawn_guarded(argv, stdout=asyncio.subprocess.PIPE, env=env, cwd=None, umask=None, keep_fds=())
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _write_lines(path: str, lines: list[str]) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    return path


def write_stub_wheels(directory: str, installed: dict[str, Installed]) -> None:
    """One metadata-only wheel per installed distribution: the resolver reads its real dependencies from it."""
    os.makedirs(directory, exist_ok=True)
    for item in installed.values():
        if item.metadata is None:
            continue
        try:
            Version(item.dist.version)
            with fsread.open_regular(item.metadata, "rb") as handle:
                metadata = handle.read()
        except (InvalidVersion, OSError):
            continue
        stem = f"{canonicalize_name(item.dist.name).replace('-', '_')}-{item.dist.version}"
        info = f"{stem}.dist-info"
        with zipfile.ZipFile(os.path.join(directory, f"{stem}-py3-none-any.whl"), "w") as wheel:
            wheel.writestr(f"{info}/METADATA", metadata)
            wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: jupyter_layenv\nRoot-Is-Purelib: true\n"
                                            "Tag: py3-none-any\n")  # fmt: skip
            wheel.writestr(f"{info}/RECORD", f"{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")


def parse_compiled(text: str) -> list[Pin]:
    """``uv pip compile --generate-hashes`` output: ``name==version \\`` lines, ``--hash`` lines, ``# via`` notes."""
    entries: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not raw[0].isspace() and not line.startswith("#"):
            spec, _, note = line.partition(" #")
            spec = spec.rstrip().rstrip("\\").strip()
            try:
                req = Requirement(spec)
            except InvalidRequirement:
                continue
            version = next((s.version for s in req.specifier if s.operator == "=="), "")
            via = note.strip().removeprefix("via").strip()
            entries.append({"name": req.name, "version": version, "url": req.url, "hashes": [],
                            "via": [part.strip() for part in via.split(",") if part.strip()]})  # fmt: skip
        elif entries and line.startswith("--hash="):
            entries[-1]["hashes"].append(line.removeprefix("--hash=").rstrip("\\").strip())
        elif entries and line.startswith("#"):
            note = line.lstrip("#").strip().removeprefix("via").strip()
            entries[-1]["via"] += [part.strip() for part in note.split(",") if part.strip()]
    return [Pin(e["name"], e["version"], tuple(e["hashes"]), e["url"], tuple(e["via"])) for e in entries]


def parse_report(report: dict) -> list[Pin]:
    """``pip install --dry-run --report``: what pip would install, with its archive hashes and dependencies."""
    marker_env = {**default_environment(), "extra": ""}
    pins = []
    for item in report.get("install", []):
        meta = item.get("metadata") or {}
        info = item.get("download_info") or {}
        archive = info.get("archive_info") or {}
        hashes = [f"{algo}:{value}" for algo, value in (archive.get("hashes") or {}).items()]
        requires = []
        for spec in meta.get("requires_dist") or []:
            with contextlib.suppress(InvalidRequirement):
                req = Requirement(spec)
                if req.marker is None or req.marker.evaluate(marker_env):  # type: ignore[arg-type]
                    requires.append(canonicalize_name(req.name))
        url = info.get("url") if item.get("is_direct") else None
        via = ("-r request",) if item.get("requested") else ()
        pins.append(Pin(str(meta.get("name")), str(meta.get("version")), tuple(hashes), url, via, tuple(requires)))
    return pins


@dataclass
class ToolResolver(Resolver):
    """uv or pip, with the administrator's index settings; work files go to ``workdir``."""

    tool: str  # "uv" or "pip"
    uv: str | None
    settings: InstallerSettings
    workdir: str
    options: tuple[str, ...] = ()
    # how the tool runs: output captured (a dry run), or a job's runner streaming it to the job's live log
    runner: Runner = run_captured
    _round: int = 0

    async def resolve(
        self, python: str, requirements: list[str], constraints: list[str], installed: dict[str, Installed]
    ) -> list[Pin]:
        self._round += 1
        here = os.path.join(self.workdir, f"resolve-{self._round}")
        await asyncio.to_thread(os.makedirs, here, exist_ok=True)
        request = await asyncio.to_thread(_write_lines, os.path.join(here, "request.in"), requirements)
        pinned: list[str] = []  # no constraints file when nothing is pinned (uv warns about an empty one)
        if constraints:
            pinned = ["-c", await asyncio.to_thread(_write_lines, os.path.join(here, "constraints.txt"), constraints)]
        output = os.path.join(here, "resolved.txt" if self.tool == "uv" else "report.json")
        if self.tool == "uv" and self.uv:
            stubs = os.path.join(here, "installed")
            await asyncio.to_thread(write_stub_wheels, stubs, installed)
            offline = ["--offline"] if self.settings.offline else []
            argv = [self.uv, "pip", "compile", "--no-config", "--python", python, *offline,
                    *source_options(self.settings), "--find-links", stubs, *option_flags("uv", self.options),
                    "--generate-hashes", "--no-header", "--annotation-style", "line", *pinned, "-o", output,
                    request]  # fmt: skip
        else:
            argv = [*_pip(python), "install", "--dry-run", "--quiet", "--isolated",
                    "--disable-pip-version-check", "--no-input", *source_options(self.settings),
                    *option_flags("pip", self.options), "--report", output, *pinned, "-r", request]  # fmt: skip
        env = {**installer_environment(self.settings), "PYTHONNOUSERSITE": "1"}
        code, text = await self.runner(argv, env)
        if code != 0:
            tail = _tail(text)  # its error line first (uv may print warnings before it), then the whole end
            raise ResolveFailed(f"{error_line(tail)}\n{tail}" if tail else f"{self.tool} exited with {code}")
        return await asyncio.to_thread(_read_output, output, self.tool)


def _pip(python: str) -> list[str]:
    """The server's own pip run for the layer's Python (it sees the base); the layer's (the base's) pip when the
    server's environment has none."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "--python", python]
    return [python, "-m", "pip"]


def _read_output(path: str, tool: str) -> list[Pin]:
    with open(path, encoding="utf-8") as handle:
        return parse_compiled(handle.read()) if tool == "uv" else parse_report(json.load(handle))


def _tail(text: str) -> str:
    """The tool's explanation: its output without our command lines and its warnings."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("$ ") and not line.lower().startswith("warning:")
    ]
    return "\n".join(lines)[-OUTPUT_TAIL:]
