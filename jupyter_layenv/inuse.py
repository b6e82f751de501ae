"""The kernels this Jupyter server runs from an environment: a delete waits until they are shut down.

A kernel imports its env's files (and a layer's kernel its base's) for as long as it runs: deleting the env under it
leaves a notebook whose imports and restart fail. Every kernel jupyter_layenv lists carries its env's path (and
base) in its spec's ``metadata.layenv``; the server's session manager says which notebook or console uses it.
The CLI runs outside any server and has no such list.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from .model import Environment
from .policy import PolicyError


@dataclasses.dataclass(frozen=True)
class RunningKernel:
    """A kernel of this server that runs from a jupyter_layenv env."""

    kernel_id: str
    env: str  # the env's path
    base: str | None  # its base's path, for a layer
    where: str  # what uses it, as a JupyterLab user knows it: "notebook a.ipynb", "console c", "kernel 1a2b3c4d"


async def no_kernels() -> list[RunningKernel]:
    """Outside a server (the CLI): no kernels known."""
    return []


async def server_kernels(kernel_manager: Any, session_manager: Any) -> list[RunningKernel]:
    """The running kernels of a Jupyter server started from a jupyter_layenv kernelspec, each with its session.

    On the event loop: the session manager is async, and both managers are the server's, not thread-safe.
    """
    sessions = {}
    for session in await session_manager.list_sessions():
        kernel_id = (session.get("kernel") or {}).get("id")
        if kernel_id:
            sessions[kernel_id] = f"{session.get('type') or 'notebook'} {session.get('path') or session.get('name')}"
    running = []
    for kernel_id in kernel_manager.list_kernel_ids():
        try:
            spec = kernel_manager.get_kernel(kernel_id).kernel_spec  # set at start: no lookup
        except KeyError:  # shut down meanwhile (or its spec gone, NoSuchKernel): nothing runs from it any more
            continue
        env = ((getattr(spec, "metadata", None) or {}).get("layenv") or {}) if spec is not None else {}
        if env.get("path"):
            where = sessions.get(kernel_id, f"kernel {kernel_id[:8]}")
            running.append(RunningKernel(kernel_id, env["path"], env.get("base"), where))
    return running


def refusal(env: Environment, running: list[RunningKernel]) -> PolicyError | None:
    """409 while a kernel runs from ``env``, or from a layer on it (which imports its files), else ``None``."""
    mine = {env.path, os.path.realpath(env.path)}
    using = [k for k in running if k.env in mine or (k.base is not None and k.base in mine)]
    if not using:
        return None
    count = f"{len(using)} kernels are" if len(using) > 1 else "1 kernel is"
    them = "them" if len(using) > 1 else "it"
    layers = sorted({os.path.basename(k.env) for k in using if k.env not in mine})
    on = f" (through its layers {', '.join(layers)})" if layers else ""
    return PolicyError(
        409,
        f"{count} running from {env.id}{on} ({', '.join(k.where for k in using)}): shut {them} down first, then "
        "delete (Kernel > Shut Down Kernel in a notebook, or the Running Terminals and Kernels panel)",
        "kernels running",
    )
