"""A server killed mid-job: the next start marks the job failed and removes the half-made env (a real process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from layenv_api import BASE_ID, StallingIndex, processes_mentioning

JUPYTER = str(Path(sys.executable).with_name("jupyter"))
TOKEN = "restart-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``jupyter server`` as a user starts it, with the create HOME and its own Jupyter dirs."""

    def __init__(self, tmp: Path, home: Path, index_url: str) -> None:
        self.port = _free_port()
        self.log = tmp / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))  # fmt: skip
        args = [JUPYTER, "server", "--no-browser", f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}", f"--LayenvService.index_url={index_url}"]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--allow-root")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.wait_ready()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/layenv/{path}", data=data, method=method,
                                         headers={"Authorization": f"token {TOKEN}"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                self.request("GET", "jobs")
                return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"server did not answer: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def test_server_killed_mid_job_then_restarted(clean_create_home: Path, tmp_path: Path):
    index = StallingIndex()
    path = clean_create_home / ".virtualenvs" / "interrupted"
    server = Server(tmp_path, clean_create_home, index.url)
    try:
        code, job = server.request("POST", "environments", {"name": "interrupted", "base": BASE_ID,
                                                              "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        deadline = time.monotonic() + 60
        while job["step"] != "install" and time.monotonic() < deadline:
            time.sleep(0.05)
            job = server.request("GET", f"jobs/{job['id']}")[1]
        time.sleep(0.5)
        assert job["state"] == "running" and path.exists()
        assert processes_mentioning(str(path)), "uv should be waiting on the index"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        assert path.exists()  # the dead server could not clean up

        server = Server(tmp_path, clean_create_home, index.url)
        code, after = server.request("GET", f"jobs/{job['id']}")
        assert code == 200 and after["state"] == "failed"
        assert "interrupted by server restart" in after["error"]
        assert not path.exists()
        assert processes_mentioning(str(path)) == []  # the orphaned installer was killed too
        code, jobs = server.request("GET", "jobs")
        assert [j["id"] for j in jobs["jobs"]] == [job["id"]]
        # the name is free again
        code, again = server.request("POST", "environments", {"name": "interrupted", "base": BASE_ID})
        assert code == 202, again
    finally:
        server.stop()
        index.close()
