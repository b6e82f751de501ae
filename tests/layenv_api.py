"""Plain helpers of the REST tests (their fixtures are in tests/rest/conftest.py): calls, job polling, kernels."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tornado.httpclient import HTTPClientError

BASE_ID = "conda-py311_ai"


async def fetch_json(jp_fetch, *parts: str, **kwargs) -> tuple[int, dict]:
    try:
        response = await jp_fetch("layenv", *parts, **kwargs)
    except HTTPClientError as err:
        return err.code, json.loads(err.response.body)
    return response.code, json.loads(response.body) if response.body else {}


async def create(jp_fetch, body: dict) -> tuple[int, dict]:
    return await fetch_json(jp_fetch, "environments", method="POST", body=json.dumps(body))


async def follow(jp_fetch, job_id: str, timeout: float = 120) -> dict:
    """Poll the job until it ends, as a client does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        _, job = await fetch_json(jp_fetch, "jobs", job_id)
        if job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def run_in_kernel(serverapp, name: str, code: str) -> str:
    """Start the kernel through the server's kernel manager (as POST /api/kernels does) and run ``code``."""
    kernel_id = await serverapp.kernel_manager.start_kernel(kernel_name=name)
    kc = serverapp.kernel_manager.get_kernel(kernel_id).client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = await kc.execute_interactive(
            code, timeout=60, output_hook=lambda msg: out.append(msg["content"].get("text", ""))
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)
    finally:
        kc.stop_channels()
        await serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)


class LoopbackListener:
    """A TCP socket on a free loopback port; a daemon thread hands each connection to :meth:`handle` until closed.
    A subclass sets its own state before calling ``__init__`` (connections may arrive at once)."""

    def __init__(self, backlog: int = 64) -> None:
        import socket
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(backlog)
        self.port: int = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.handle(conn)

    def handle(self, conn) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._sock.close()


class StallingIndex(LoopbackListener):
    """A package index that accepts connections and never answers: an install waits on it until cancelled."""

    def __init__(self) -> None:
        self._held: list = []
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}/simple"

    def handle(self, conn) -> None:
        self._held.append(conn)

    def close(self) -> None:
        super().close()
        for conn in self._held:
            conn.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line contains ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(pid))
    return found


async def wait_for_step(jp_fetch, job_id: str, step: str, timeout: float = 60) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        _, job = await fetch_json(jp_fetch, "jobs", job_id)
        if job["step"] == step or job["state"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {step}: {job}")
