"""A server killed mid-job: the next start marks the job failed and removes the half-made env (a real process)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from jupyter_process import JupyterProcess
from layenv_api import BASE_ID, StallingIndex, processes_mentioning


def _server(tmp: Path, home: Path, index_url: str) -> JupyterProcess:
    """``jupyter server`` as a user starts it, installing from the test's index (set by the administrator)."""
    server = JupyterProcess(tmp, home, args=[f"--LayenvService.index_url={index_url}"])
    server.wait_ready("layenv/jobs")
    return server


def test_server_killed_mid_job_then_restarted(clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex):
    path = clean_create_home / ".virtualenvs" / "interrupted"
    server = _server(tmp_path, clean_create_home, stalling_index.url)
    try:
        code, job = server.request("POST", "layenv/environments", {"name": "interrupted", "base": BASE_ID,
                                                              "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        job = server.wait_for_step(job["id"], "resolve")  # the resolver waits on the index
        time.sleep(0.5)
        assert job["state"] == "running" and path.exists()
        assert processes_mentioning(str(path)), "uv should be waiting on the index"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        assert path.exists()  # the dead server could not clean up

        server = _server(tmp_path, clean_create_home, stalling_index.url)
        code, after = server.request("GET", f"layenv/jobs/{job['id']}")
        assert code == 200 and after["state"] == "failed"
        assert "interrupted by server restart" in after["error"]
        assert not path.exists()
        assert processes_mentioning(str(path)) == []  # the orphaned installer was killed too
        code, jobs = server.request("GET", "layenv/jobs")
        assert [j["id"] for j in jobs["jobs"]] == [job["id"]]
        # the name is free again
        code, again = server.request("POST", "layenv/environments", {"name": "interrupted", "base": BASE_ID})
        assert code == 202, again
    finally:
        server.stop()
