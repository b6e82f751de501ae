"""A server killed mid-job: the next start marks the job failed and removes the half-made env (a real process)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jupyter_process import JUPYTER, JupyterProcess
from layenv_api import BASE_ID, StallingIndex, processes_mentioning

from jupyter_layenv.create.jobstore import Job, JobStore
from jupyter_layenv.create.recovery import recover_job
from jupyter_layenv.model import BUILDING_MARKER

# every server process records its audit events in a file of its own, named by its pid
AUDIT_CONFIG = """import logging, os
c.EventLogger.handlers = [logging.FileHandler(os.path.join({audit!r}, f"{{os.getpid()}}.jsonl"))]
"""

INTERRUPTED = "interrupted: the server running it stopped; the half-made environment was removed, create it again"


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
        assert "interrupted: the server running it stopped" in after["error"]
        assert not path.exists()
        assert processes_mentioning(str(path)) == []  # the orphaned installer was killed too
        code, jobs = server.request("GET", "layenv/jobs")
        assert [j["id"] for j in jobs["jobs"]] == [job["id"]]
        # the name is free again
        code, again = server.request("POST", "layenv/environments", {"name": "interrupted", "base": BASE_ID})
        assert code == 202, again
    finally:
        server.stop()


def test_a_job_whose_env_a_cli_listing_cleaned_after_the_crash_blames_no_other_server(
    clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex
):
    """After the crash, the user runs `jupyter layenv list`: it removes the abandoned half-made env and recovers the
    job, whose error then said the env was removed "by another server sharing the root" (there was none)."""
    path = clean_create_home / ".virtualenvs" / "listed_away"
    server = _server(tmp_path, clean_create_home, stalling_index.url)
    try:
        code, job = server.request("POST", "layenv/environments", {"name": "listed_away", "base": BASE_ID,
                                                              "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        server.wait_for_step(job["id"], "resolve")
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        assert path.exists()
        cli = subprocess.run([JUPYTER, "layenv", "list"], env=server.env, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert not path.exists()
        server = _server(tmp_path, clean_create_home, stalling_index.url)
        after = server.get(f"layenv/jobs/{job['id']}")
        assert after["state"] == "failed"
        assert "already been removed" in after["error"] and "another server" not in after["error"], after["error"]
    finally:
        server.stop()


def _audited(audit: Path, pid: int) -> list[dict]:
    """The jupyter_layenv audit events the server process ``pid`` emitted."""
    record = audit / f"{pid}.jsonl"
    events = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return [event for event in events if "jupyter_layenv" in event["__schema__"]]


def test_a_live_server_recovering_a_dead_servers_job_on_read_audits_it_once(
    clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex
):
    """Broken by: recovery on a read (a live server finds a job whose server was killed) failing the job without the
    audit event a start emits; or two live servers reading it at once both recovering it (two events)."""
    audit = tmp_path / "audit"
    audit.mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.py").write_text(AUDIT_CONFIG.format(audit=str(audit)))
    path = clean_create_home / ".virtualenvs" / "orphaned"
    dying = _server(tmp_path, clean_create_home, stalling_index.url)  # all share HOME and the Jupyter data dir
    readers: list[JupyterProcess] = []
    try:
        code, job = dying.request("POST", "layenv/environments", {"name": "orphaned", "base": BASE_ID,
                                                                  "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        deadline = time.monotonic() + 60
        while not processes_mentioning(str(path)) or dying.get(f"layenv/jobs/{job['id']}")["step"] == "create":
            assert time.monotonic() < deadline, f"the installer never started\n{dying.log_tail()}"
            time.sleep(0.1)
        # started while the job's server lives: their own start leaves the job alone
        readers = [_server(tmp_path, clean_create_home, stalling_index.url) for _ in range(2)]
        assert {reader.get(f"layenv/jobs/{job['id']}")["state"] for reader in readers} == {"running"}
        dying.proc.send_signal(signal.SIGKILL)
        dying.proc.wait(timeout=10)
        while processes_mentioning(str(path)):  # the step's guard kills its group: then the env's lock is free
            assert time.monotonic() < deadline + 30, "the dead server's installer outlived it"
            time.sleep(0.1)

        def read(i: int) -> tuple[int, dict]:  # both live servers, several clients each, the job and the list
            return readers[i % 2].request("GET", f"layenv/jobs/{job['id']}" if i % 4 < 2 else "layenv/jobs")

        with ThreadPoolExecutor(8) as pool:
            assert {code for code, _ in pool.map(read, range(16))} == {200}
        after = readers[0].get(f"layenv/jobs/{job['id']}")
        assert after["state"] == "failed" and after["error"] == INTERRUPTED, after
        assert readers[1].get(f"layenv/jobs/{job['id']}") == after
        assert not path.exists()
        events = [event for reader in readers for event in _audited(audit, reader.proc.pid)]
        assert [(e["action"], e["outcome"], e["env"], e["path"], e["detail"]) for e in events] == [
            ("create", "failed", "orphaned", str(path), INTERRUPTED)
        ], events
    finally:
        dying.stop()
        for reader in readers:
            reader.stop()


def test_a_job_recovered_by_another_process_meanwhile_is_not_recovered_again(tmp_path: Path):
    """Broken by: recover_job trusting the copy of the job read before it took the env's lock: a server that read the
    job as running just before another one recovered it (and released the lock) recovers it a second time, emits a
    second audit event and rewrites its error to say that another server removed the env."""
    store = JobStore(str(tmp_path / "jobs"))
    path = tmp_path / "root" / "raced"
    path.mkdir(parents=True)
    job = Job(id=uuid.uuid4().hex, name="raced", path=str(path), base="", user="me", plan={"action": "create"},
              state="running", step="install")  # fmt: skip
    (path / BUILDING_MARKER).write_text(job.id)
    store.save(job)
    first, second = store.load(job.id), store.load(job.id)  # what two servers read, both before either recovered
    log = logging.getLogger("test")
    assert first is not None and second is not None
    assert recover_job(store, first, log) is True
    assert recover_job(store, second, log) is False
    stored = store.load(job.id)
    assert stored is not None and (stored.state, stored.error) == ("failed", INTERRUPTED)
    assert store.read_log(job.id, 0).decode().count("== failed") == 1
