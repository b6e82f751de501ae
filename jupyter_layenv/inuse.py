"""The kernels running from an environment: a delete waits until they are shut down, a cleanup keeps the env.

A kernel imports its env's files (and a layer's kernel its base's) for as long as it runs: deleting the env under it
leaves a notebook whose imports and restart fail. One source answers for the listing, the delete (its first check
and the check again under the env's lock) and the cleanup, in the server and in the CLI:

- the kernels of this Jupyter server: each started from a jupyter_layenv kernelspec carries its env's path (and
  base) in ``metadata.layenv``, and the server's session manager says which notebook or console uses it;
- every kernel process on the machine (Linux ``/proc``): whoever started it (another server, nbconvert, papermill,
  a terminal), its command line names its env's interpreter and a connection file (``{connection_file}`` of every
  kernelspec, a ``.json`` file). The CLI runs outside any server: this is what it sees.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Iterable, Sequence
from typing import Any

from . import fsread
from .model import Environment


@dataclasses.dataclass(frozen=True)
class RunningKernel:
    """A kernel (or, for a cleanup, any process) that runs from an env."""

    kernel_id: str  # the server's kernel id, or the one in a kernel process's connection file name ("" if none)
    env: str  # the env's path
    base: str | None  # its base's path, for a layer
    where: str  # what uses it, as its user knows it: "notebook a.ipynb", "kernel 1a2b3c4d (pid 42, user ada)"


async def no_kernels() -> list[RunningKernel]:
    """Outside a server (the CLI): no server's kernels; the kernel processes are found all the same."""
    return []


async def server_kernels(kernel_manager: Any, session_manager: Any) -> list[RunningKernel]:
    """The running kernels of a Jupyter server started from a jupyter_layenv kernelspec, each with its session.

    On the event loop: the session manager is async, and both managers are the server's, not thread-safe. The
    sessions are asked only when such a kernel runs (every listing asks: most find none).
    """
    ours = []
    for kernel_id in kernel_manager.list_kernel_ids():
        try:
            spec = kernel_manager.get_kernel(kernel_id).kernel_spec  # set at start: no lookup
        except KeyError:  # shut down meanwhile (or its spec gone, NoSuchKernel): nothing runs from it any more
            continue
        env = ((getattr(spec, "metadata", None) or {}).get("layenv") or {}) if spec is not None else {}
        if env.get("path"):
            ours.append((kernel_id, env))
    if not ours:
        return []
    sessions = {}
    for session in await session_manager.list_sessions():
        kernel_id = (session.get("kernel") or {}).get("id")
        if kernel_id:
            sessions[kernel_id] = f"{session.get('type') or 'notebook'} {session.get('path') or session.get('name')}"
    return [
        RunningKernel(kernel_id, env["path"], env.get("base"), sessions.get(kernel_id, f"kernel {kernel_id[:8]}"))
        for kernel_id, env in ours
    ]


def running(
    envs: Iterable[Environment], server: Sequence[RunningKernel] = (), *, kernels_only: bool = True
) -> list[RunningKernel]:
    """This server's kernels, then every other kernel process (``kernels_only=False``: any process) running from
    one of ``envs``. Blocking (reads ``/proc``): call from a thread."""
    known = {kernel.kernel_id for kernel in server}
    found = processes(envs, kernels_only=kernels_only)
    return [*server, *(kernel for kernel in found if not kernel.kernel_id or kernel.kernel_id not in known)]


def paths(env: Environment) -> set[str]:
    """The paths a kernel's ``env`` or ``base`` may name ``env`` by: as discovered, and through its links."""
    return {env.path, os.path.realpath(env.path)}


def using(env: Environment, running: Sequence[RunningKernel]) -> list[RunningKernel]:
    """The kernels running from ``env``, or from a layer on it (which imports its files)."""
    if not running:  # the listing asks for every env: no realpath when nothing runs
        return []
    mine = paths(env)
    return [k for k in running if k.env in mine or (k.base is not None and k.base in mine)]


def processes(envs: Iterable[Environment], *, kernels_only: bool = True) -> list[RunningKernel]:
    """The processes whose command line (interpreter, script, argument) or executable names a file inside one of
    ``envs`` (the innermost, for a layer nested in its base); with ``kernels_only``, only those that also name a
    connection file.

    Linux ``/proc``: a kernel's command line starts with its env's Python, even through the activation wrapper
    (which ``exec``s it), whoever started it; other users' command lines are readable too. Elsewhere: none.
    """
    by_path = {env.path.rstrip(os.sep): env for env in envs}
    found = []
    for entry in fsread.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        connection = next((arg.rsplit("=", 1)[-1] for arg in args if arg.endswith(".json")), None)
        if kernels_only and connection is None:  # most processes: told apart without a path looked up
            continue
        env = next((env for arg in args if (env := _env_of(arg, by_path)) is not None), None)
        if env is None:  # `python -m ipykernel_launcher` from an activated shell: its executable is the env's
            env = _env_of(_executable(entry), by_path)
        if env is None:
            continue
        found.append(RunningKernel(_kernel_id(connection), env.path, env.base, _where(int(entry), connection)))
    return found


def _env_of(arg: str, by_path: dict[str, Environment]) -> Environment | None:
    """The innermost env a file named on a command line is inside: a few dict lookups, however many envs."""
    if not arg.startswith(os.sep):
        return None
    path = arg
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return None
        if parent in by_path:
            return by_path[parent]
        path = parent


def _executable(pid: str) -> str:
    """The program a process runs (through its links; another user's: unreadable unless root)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _kernel_id(connection: str | None) -> str:
    """Jupyter servers name a kernel's connection file ``kernel-<kernel id>.json``."""
    name = os.path.basename(connection or "")
    return name[len("kernel-") : -len(".json")] if name.startswith("kernel-") else ""


def _where(pid: int, connection: str | None) -> str:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        user = pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        user = "?"
    kernel_id = _kernel_id(connection)
    if connection is None:
        return f"process {pid} (user {user})"
    return f"kernel {kernel_id[:8]} (pid {pid}, user {user})" if kernel_id else f"kernel process {pid} (user {user})"
