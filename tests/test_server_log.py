"""A refused REST call is one line in the server log, saying why (not tornado's line and the access line both)."""

from __future__ import annotations

from pathlib import Path

from jupyter_process import JupyterProcess, http


def test_a_refused_call_is_logged_once_with_its_reason(tmp_path: Path, create_home: Path):
    server = JupyterProcess(tmp_path, create_home)
    try:
        server.wait_ready()
        calls = [
            ("POST", "layenv/environments", {"name": "../x%s", "base": "conda-py311_ai"}, 400, "invalid env name"),
            ("GET", "layenv/environments/nothere", None, 404, "environment 'nothere' not found"),
            ("DELETE", "layenv/environments/conda-base", None, 403, "install root"),
        ]
        for method, path, body, status, _ in calls:
            assert server.request(method, path, body)[0] == status
        assert http("GET", server.url + "layenv/environments").status == 403  # no token
        ok = server.request("GET", "layenv/environments")[0]
    finally:
        server.stop()
    assert ok == 200
    lines = server.log.read_text().splitlines()
    for method, path, _, status, reason in calls:
        logged = [line for line in lines if f"{status} {method} /{path} " in line]
        assert len(logged) == 1, (method, path, logged)
        assert reason in logged[0], logged[0]
    refused = [line for line in lines if " GET /layenv/environments " in line and "403" in line]
    assert len(refused) == 1 and "send a valid token" in refused[0], refused
