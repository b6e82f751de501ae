"""A delete while a kernel of the env is starting: refused (409, naming the start), never a kernel from deleted files.

Between the provisioner's look at the env and the kernel's process, the server lists no kernel (it adds one when its
process runs) and ``/proc`` shows none: a delete there found nothing running and removed the env under the start.
A real server, a real venv with ipykernel, a real kernel start through ``api/kernels``; the start is held inside the
provisioner by a real ``flock`` on the last-use file it records the start in (as another process writing it would).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from pathlib import Path

from envtree import make_venv
from jupyter_core.paths import jupyter_data_dir
from layenv_api import fetch_json


def _blocked_flocks() -> int:
    """The ``flock`` calls waiting on this machine (``/proc/locks`` marks each with ``->``)."""
    with open("/proc/locks", encoding="ascii") as handle:
        return sum(1 for line in handle if "->" in line)


async def test_a_delete_during_a_kernel_start_is_refused(jp_fetch, clean_create_home: Path, audit):
    env = make_venv(clean_create_home / ".virtualenvs" / "starting", ipykernel=True)
    last_use = Path(jupyter_data_dir()) / "layenv" / "last_used.json.lock"
    last_use.parent.mkdir(parents=True, exist_ok=True)
    holder = os.open(last_use, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)
    waiting = _blocked_flocks()
    start = asyncio.ensure_future(
        jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "venv-starting-py"}))
    )
    kernel_id = None
    try:
        for _ in range(400):  # until the start waits inside the provisioner, past its look at the env
            await asyncio.sleep(0.05)
            if _blocked_flocks() > waiting or start.done():
                break
        assert not start.done(), start.result()
        code, body = await fetch_json(jp_fetch, "environments", "venv-starting", method="DELETE")
        assert code == 409, body
        assert body["message"].startswith("a kernel is starting from starting"), body
        assert (audit[-1]["action"], audit[-1]["outcome"]) == ("delete", "refused")
        assert (env / "pyvenv.cfg").is_file()
    finally:
        os.close(holder)
        response = await asyncio.wait_for(start, 60)
        kernel_id = json.loads(response.body)["id"]
    try:
        code, body = await fetch_json(jp_fetch, "environments", "venv-starting", method="DELETE")
        assert code == 409 and body["message"].startswith("1 kernel is running from starting"), body
    finally:
        await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    code, body = await fetch_json(jp_fetch, "environments", "venv-starting", method="DELETE")
    assert code == 204, body
    assert not env.exists()
