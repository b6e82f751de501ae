"""A server killed in the middle of a change of a layer: the next start puts the layer back as it was before."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from envtree import layer_dists
from jupyter_process import JupyterProcess
from layenv_api import BASE_ID, StallingIndex, processes_mentioning

from jupyter_layenv.layers.change import SNAPSHOT_DIR


def _files(env: Path) -> list[str]:
    return sorted(str(p.relative_to(env)) for p in env.rglob("*") if "__pycache__" not in p.parts)


def test_a_change_killed_with_its_server_is_undone_at_the_next_start(
    clean_create_home: Path,
    tmp_path: Path,
    stalling_index: StallingIndex,
    faithful_wheelhouse: Path,
):
    path = clean_create_home / ".virtualenvs" / "steady"
    offline = [f"--LayenvService.find_links={faithful_wheelhouse}", "--LayenvService.offline=True"]
    server = JupyterProcess(tmp_path, clean_create_home, args=offline)
    try:
        server.wait_ready("layenv/jobs")
        code, job = server.request("POST", "layenv/environments", {"name": "steady", "base": BASE_ID,
                                                                  "packages": ["nbthing"]})  # fmt: skip
        assert code == 202 and server.follow(job["id"])["state"] == "succeeded"
    finally:
        server.stop()
    before = _files(path)
    assert layer_dists(path) == {"nbthing", "iniconfig"}

    server = JupyterProcess(tmp_path, clean_create_home, args=[f"--LayenvService.index_url={stalling_index.url}"])
    server.wait_ready("layenv/jobs")
    code, job = server.request("POST", f"layenv/environments/{BASE_ID}.steady/packages", {"add": ["anything"]})
    assert code == 202, job
    assert server.wait_for_step(job["id"], "resolve")["state"] == "running"
    assert (path / SNAPSHOT_DIR).is_dir()
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    # what a change killed half-way leaves: a package half uninstalled
    site = next(path.glob("lib/python*/site-packages"))
    (site / "nbthing.py").unlink()
    shutil.rmtree(next(site.glob("nbthing-*.dist-info")))

    server = JupyterProcess(tmp_path, clean_create_home, args=[f"--LayenvService.index_url={stalling_index.url}"])
    try:
        server.wait_ready("layenv/jobs")
        code, after = server.request("GET", f"layenv/jobs/{job['id']}")
        assert code == 200 and after["state"] == "failed" and "put back as it was before" in after["error"]
        assert after["error"] == (
            "interrupted: the server running it stopped; the layer was put back as it was before, make the change again"
        )  # the words a shutdown during a change leaves too
        assert _files(path) == before and not (path / SNAPSHOT_DIR).exists()
        assert processes_mentioning(str(path)) == []  # the orphaned resolver was killed too
        code, revisions = server.request("GET", f"layenv/environments/{BASE_ID}.steady/revisions")
        assert [r["revision"] for r in revisions["revisions"]] == [1]
    finally:
        server.stop()
