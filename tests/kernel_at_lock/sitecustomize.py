"""Test-only (on a process's PYTHONPATH): start a kernel the moment a delete takes its env's lock.

An audit hook (PEP 578) watches the ``open`` of a ``.layenv-locks`` directory from ``removal.remove`` (the delete,
after its first check for running kernels, taking the env's lock); the first time, it starts the command
``LAYENV_TEST_KERNEL_AT_LOCK`` (a JSON argv, a real kernel of the env) and writes its pid to
``LAYENV_TEST_KERNEL_PID``. So a test puts a kernel start exactly into the window between the delete's checks,
without any hook in the product.
"""

import json
import os
import subprocess
import sys
import time

_ARGV = os.environ.get("LAYENV_TEST_KERNEL_AT_LOCK")
_PID = os.environ.get("LAYENV_TEST_KERNEL_PID", "")
_started = []


def _in_remove() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "remove" and frame.f_code.co_filename.endswith("removal.py"):
            return True
        frame = frame.f_back
    return False


def _hook(event: str, args: tuple) -> None:
    if event != "open" or _started or not isinstance(args[0], str) or not args[0].endswith(".layenv-locks"):
        return
    if not _in_remove():
        return
    _started.append(True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LAYENV_TEST_")}
    kernel = subprocess.Popen(json.loads(_ARGV), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Popen returns once the exec began: the new command line shows a moment later (a kernel still being exec'd
    # has none yet, which is the window no check can close). Started means running: wait for it.
    deadline = time.monotonic() + 30
    while not _cmdline(kernel.pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    with open(_PID, "w", encoding="utf-8") as out:
        out.write(str(kernel.pid))


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


if _ARGV:
    sys.addaudithook(_hook)
