"""A real ``jupyter server`` or ``jupyter lab`` process, started as a user starts it, for tests and benchmarks.

Only HOME and Jupyter's own directories are isolated; the configuration is what the installed package ships,
plus the config files a caller writes on purpose.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

JUPYTER = str(Path(sys.executable).with_name("jupyter"))


def run_code(km: KernelManager, code: str) -> tuple[dict, str]:
    """Start ``km``'s kernel, run ``code`` in it and shut it down: the execute reply's content, what it printed."""
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = kc.execute_interactive(
            code, timeout=60, output_hook=lambda msg: out.append(msg["content"].get("text", ""))
        )
        return reply["content"], "".join(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run_in_kernel(ksm: KernelSpecManager, name: str, code: str) -> str:
    """Start the kernel ``name`` as the server would (through ``ksm``), run ``code``, return what it printed."""
    from jupyter_client.manager import KernelManager

    content, out = run_code(KernelManager(kernel_name=name, kernel_spec_manager=ksm), code)
    assert content["status"] == "ok", content
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: Any  # decoded JSON, else the text, or None when empty
    headers: dict[str, str]  # names in lower case


def http(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 60) -> Reply:
    """One request with a token and a JSON body; an HTTP error status is returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    return open_reply(urllib.request.urlopen, request, timeout)


def open_reply(open_: Any, request: urllib.request.Request, timeout: float) -> Reply:
    """Send with ``open_`` (urlopen, or an opener's open); an HTTP error is a reply like any other."""
    try:
        with open_(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, raw, got = err.code, err.read(), err.headers
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return Reply(status, decoded, {k.lower(): v for k, v in got.items()})


class JupyterProcess:
    """``jupyter <app>`` on a free loopback port with a token; its output goes to ``work/server-<port>.log``."""

    def __init__(
        self,
        work: Path,
        home: Path,
        *,
        app: str = "server",
        jupyter: str = JUPYTER,
        token: str = "secret",
        config_files: Mapping[str, dict] = {},  # read only
        args: Sequence[str] = (),
        drop_env: Sequence[str] = ("PYTHONPATH", "VIRTUAL_ENV"),
        cwd: Path | None = None,
        user: str | None = None,
        umask: int = 0o022,
        extra_env: Mapping[str, str] = {},  # read only
    ) -> None:
        """``user``: run as that Unix user (needs root): its uid, primary gid and groups, ``umask``, USER and
        LOGNAME; ``work`` and Jupyter's dirs are made its own. ``home`` and ``jupyter`` must be usable by it."""
        config_dir = work / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        for name, content in config_files.items():
            (config_dir / name).write_text(json.dumps(content))
        run_as: dict[str, Any] = {}
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "umask": umask,
                      "extra_groups": os.getgrouplist(user, entry.pw_gid)}  # fmt: skip
            for directory in (work, config_dir, work / "data", work / "runtime"):
                directory.mkdir(exist_ok=True)
                os.chown(directory, entry.pw_uid, entry.pw_gid)
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = work / f"server-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_env))}
        self.env.update(
            HOME=str(home),
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_DATA_DIR=str(work / "data"),
            JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        )
        if user is not None:
            self.env.update(USER=user, LOGNAME=user)
        self.env.update(extra_env)
        argv = [jupyter, app, "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0"]
        argv += ["--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", *args]
        if hasattr(os, "geteuid") and os.geteuid() == 0 and user is None:
            argv.append("--allow-root")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, **run_as)

    def wait_ready(self, path: str = "api/status", timeout: float = 90) -> None:
        """Until ``path`` answers 200; fails with the server's log when it exits or never answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyter exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if self.request("GET", path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"jupyter did not answer in {timeout} s:\n{self.log_tail()}")

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> tuple[int, Any]:
        """``(status, body)`` as :func:`http` decodes it; an HTTP error status is returned, not raised."""
        reply = http(method, self.url + path, self.token, body, timeout)
        return reply.status, reply.body

    def get(self, path: str) -> Any:
        """GET that must answer 200; the failure carries the end of the server's log."""
        status, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body}\n{self.log_tail()}")
        return body

    def wait_for_step(self, job_id: str, step: str, timeout: float = 60) -> dict:
        """Poll the job until it reaches ``step`` or ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"layenv/jobs/{job_id}")
            if job["step"] == step or job["state"] not in ("queued", "running"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached {step}: {job}\n{self.log_tail()}")

    def follow(self, job_id: str, timeout: float = 120, interval: float = 0.1) -> dict:
        """Poll the job until it ends, as a client does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"layenv/jobs/{job_id}")
            if job["state"] not in ("queued", "running"):
                return job
            time.sleep(interval)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
