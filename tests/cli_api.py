"""Plain helpers of the CLI tests (their ``cli_env`` fixture is in tests/conftest.py): run ``jupyter layenv``."""

from __future__ import annotations

import os
import pty
import subprocess

from jupyter_process import JUPYTER


def layenv(*args: str, env: dict[str, str], tty: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI; with ``tty`` its stderr is a terminal (where the progress bar is drawn), captured in .stderr."""
    if not tty:
        return subprocess.run([JUPYTER, "layenv", *args], capture_output=True, text=True, env=env, timeout=180)
    master, slave = pty.openpty()
    proc = subprocess.Popen([JUPYTER, "layenv", *args], stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=180)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, b"".join(chunks).decode())
