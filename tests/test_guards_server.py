"""Guards of a real ``jupyter server`` process's life, each failing on a planted regression:

- a server that starts while another live process (here a second server of the same user) builds an env leaves
  that job running and its env alone;
- a server shut down with a running job stops the installer, ends the job as interrupted and removes the env (a
  layer change's job: restores the layer, and says so);
- a server started WITH a ``PYTHONPATH`` keeps it from its installers and from the kernels it starts.

Installs wait on a loopback index that never answers (tests/layenv_api.py), so a job stays running on purpose.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hubutil import execute
from jupyter_process import JupyterProcess
from layenv_api import BASE_ID, StallingIndex, processes_mentioning

from jupyter_layenv.model import BUILDING_MARKER


def _server(work: Path, home: Path, *args: str, **kwargs) -> JupyterProcess:
    server = JupyterProcess(work, home, args=list(args), **kwargs)
    try:
        server.wait_ready("layenv/jobs")
    except BaseException:
        server.stop()
        raise
    return server


def _running_job(server: JupyterProcess, name: str) -> dict:
    """A create of ``name`` whose installer (past the virtualenv step) is waiting on the stalling index."""
    code, job = server.request(
        "POST", "layenv/environments", {"name": name, "base": BASE_ID, "packages": ["iniconfig"]}
    )
    assert code == 202, job
    deadline = time.monotonic() + 60
    while not processes_mentioning(job["path"]) or server.get(f"layenv/jobs/{job['id']}")["step"] == "create":
        assert time.monotonic() < deadline, f"the installer never started\n{server.log_tail()}"
        time.sleep(0.1)
    job = server.get(f"layenv/jobs/{job['id']}")
    assert job["state"] == "running", job
    return job


def test_a_starting_server_leaves_alone_a_job_another_live_server_is_running(
    clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex
):
    """Broken by: recovery failing every queued/running job it finds on disk without asking whether a live process
    still holds the job's env lock (the second server then kills the first one's installer and removes its env)."""
    index = f"--LayenvService.index_url={stalling_index.url}"
    first = _server(tmp_path, clean_create_home, index)  # both servers share HOME and the Jupyter data dir
    second = None
    try:
        job = _running_job(first, "held")
        path = Path(job["path"])
        second = _server(tmp_path, clean_create_home, index)
        listed = second.get("layenv/environments")  # a listing cleans abandoned builds: this one is alive
        assert [s["reason"].split(":")[0] for s in listed["skipped"] if s["path"] == str(path)] == ["being created"]
        assert second.get(f"layenv/jobs/{job['id']}")["state"] == "running"
        assert first.get(f"layenv/jobs/{job['id']}")["state"] == "running"
        assert (path / BUILDING_MARKER).is_file() and processes_mentioning(str(path)), "the installer was stopped"
        code, body = second.request("DELETE", f"layenv/jobs/{job['id']}")
        assert code == 409 and "another process" in body["message"], body
        code, cancelled = first.request("DELETE", f"layenv/jobs/{job['id']}")
        assert code == 200 and cancelled["state"] == "cancelled" and not path.exists()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_server_shut_down_with_a_running_job_stops_it_and_removes_its_env(
    clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex
):
    """Broken by: JobManager.stop not cancelling the running jobs (the installer outlives the server, its job stays
    "running" on disk and its half-made env stays until a later start cleans up)."""
    index = f"--LayenvService.index_url={stalling_index.url}"
    server = _server(tmp_path, clean_create_home, index)
    try:
        job = _running_job(server, "shutdown")
        path = Path(job["path"])
        server.stop()  # SIGTERM, as a user's Ctrl-C or a spawner's stop
        assert server.proc.returncode == 0, server.log_tail()
        assert processes_mentioning(str(path)) == [], "the installer outlived the server"
        assert not path.exists(), "the half-made env outlived the server"
        record = json.loads((tmp_path / "data" / "layenv" / "jobs" / f"{job['id']}.json").read_text())
        assert record["state"] == "failed" and "interrupted by server shutdown" in record["error"], record
    finally:
        server.stop()
    restarted = _server(tmp_path, clean_create_home, index)
    try:
        after = restarted.get(f"layenv/jobs/{job['id']}")
        assert after["state"] == "failed" and "interrupted" in after["error"], after
        assert not path.exists()
    finally:
        restarted.stop()


def test_a_server_shut_down_during_a_layer_change_says_the_layer_is_as_before(
    clean_create_home: Path, tmp_path: Path, stalling_index: StallingIndex
):
    """Broken by: JobManager.stop ending every job with "create it again", a change's too (its layer is restored,
    not removed: there is nothing to create again)."""
    index = f"--LayenvService.index_url={stalling_index.url}"
    server = _server(tmp_path, clean_create_home, index)
    try:
        code, job = server.request("POST", "layenv/environments", {"name": "changing", "base": BASE_ID})
        assert code == 202, job
        job = server.follow(job["id"], timeout=60)
        assert job["state"] == "succeeded", job
        env_id = job["environment"]["id"]
        code, change = server.request("POST", f"layenv/environments/{env_id}/packages", {"add": ["iniconfig"]})
        assert code == 202, change
        deadline = time.monotonic() + 60
        while not processes_mentioning(change["path"]):  # its resolver waits on the stalling index
            assert time.monotonic() < deadline, f"the resolver never started\n{server.log_tail()}"
            time.sleep(0.1)
        server.stop()
        record = json.loads((tmp_path / "data" / "layenv" / "jobs" / f"{change['id']}.json").read_text())
        assert record["state"] == "failed" and "interrupted by server shutdown" in record["error"], record
        assert "create it again" not in record["error"] and "as it was before" in record["error"], record
        assert record["error"] == (
            "interrupted by server shutdown; the layer was put back as it was before, make the change again"
        ), record  # recovery's words too
        assert (Path(change["path"]) / "pyvenv.cfg").is_file(), "the layer was removed, not restored"
    finally:
        server.stop()


SITECUSTOMIZE = """
import json, os, sys
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported-by.jsonl"), "a") as out:
    out.write(json.dumps({"pid": os.getpid(), "argv": sys.argv}) + "\\n")
"""


def test_the_servers_pythonpath_reaches_neither_installers_nor_kernels(
    clean_create_home: Path, tmp_path: Path, wheelhouse: Path
):
    """Broken by: installer_environment keeping PYTHONPATH, or kernelspecs not blanking it for the kernel (it then
    imports the server's modules: here a sitecustomize that records every Python process it is imported into)."""
    leak = tmp_path / "server-pythonpath"
    leak.mkdir()
    (leak / "sitecustomize.py").write_text(SITECUSTOMIZE)
    seen = leak / "imported-by.jsonl"
    settings = ["--LayenvService.offline=True", f"--LayenvService.find_links={wheelhouse}"]
    server = _server(
        tmp_path, clean_create_home, "--LayenvService.installer=pip", *settings, drop_env=("VIRTUAL_ENV",),
        extra_env={"PYTHONPATH": str(leak)},
    )  # fmt: skip
    try:
        assert {json.loads(line)["pid"] for line in seen.read_text().splitlines()} == {server.proc.pid}, (
            "the test's sitecustomize should have been imported by the server itself"
        )
        code, job = server.request("POST", "layenv/environments", {"name": "clean", "base": BASE_ID,
                                                                   "packages": ["iniconfig"]})  # fmt: skip
        assert code == 202, job
        job = server.follow(job["id"])
        assert job["state"] == "succeeded", server.get(f"layenv/jobs/{job['id']}/log")
        kernel_name = job["environment"]["kernels"][0]["name"]
        code = "import os, sys; print(repr(os.environ.get('PYTHONPATH')), sys.prefix, 'sitecustomize' in sys.modules)"
        out = execute(server.url, server.token, kernel_name, code).split()
        assert out[1:] == [job["path"], "False"], out
        assert out[0] in ("None", "''"), f"the kernel's PYTHONPATH is {out[0]}"
        importers = [json.loads(line) for line in seen.read_text().splitlines()]
        leaked = [entry["argv"] for entry in importers if entry["pid"] != server.proc.pid]
        assert leaked == [], f"the server's PYTHONPATH reached {leaked}"
    finally:
        server.stop()
