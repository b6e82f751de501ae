"""Guards of the create jobs in a real server (pytest-jupyter), each failing on a planted regression:

- a second create of a name this server is building gets the in-process 409 ("being created right now"), every
  time, and the first job keeps its name busy while it runs;
- ``LayenvService.proxy`` reaches the installers (uv and pip): a loopback proxy records their requests.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from layenv_api import BASE_ID, LoopbackListener, create, fetch_json, follow, wait_for_step

from jupyter_layenv.model import BUILDING_MARKER


class RecordingProxy(LoopbackListener):
    """An HTTP proxy on loopback that records each request line (``GET http://…`` or ``CONNECT host:443``) and
    answers 404 (403 to a CONNECT): what went through it is known, and nothing reaches a network."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(backlog=16)
        self.url = f"http://127.0.0.1:{self.port}"

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                line = data.split(b"\r\n", 1)[0].decode("latin-1")
                self.requests.append(line)
                status = "403 Forbidden" if line.startswith("CONNECT") else "404 Not Found"
                conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            except OSError:
                return


@pytest.fixture
def service(request) -> dict:
    """The test's LayenvService settings (indirect parametrization); default: installs wait on a stalling index."""
    if hasattr(request, "param"):
        return dict(request.param)
    return {"index_url": request.getfixturevalue("stalling_index").url}


@pytest.fixture
def proxy() -> RecordingProxy:
    recording = RecordingProxy()
    yield recording
    recording.close()


@pytest.fixture
def jp_server_config(service: dict, request) -> dict:
    if service.pop("proxy", None) == "recording":
        service["proxy"] = request.getfixturevalue("proxy").url
    return {"ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}}, "LayenvService": service}


async def test_a_second_create_of_a_name_being_built_here_is_refused_in_process_every_time(jp_fetch, create_home: Path):
    """Broken by: dropping JobManager.submit's in-process check (the env lock still refuses, in other words, and
    the refused submit takes the first job's name out of the busy set), or by freeing the name on that refusal."""
    path = create_home / ".virtualenvs" / "twin"
    code, first = await create(jp_fetch, {"name": "twin", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202, first
    assert (await wait_for_step(jp_fetch, first["id"], "resolve"))["state"] == "running"
    for _ in range(3):  # a refusal must not free the name of the job still building it
        code, refused = await create(jp_fetch, {"name": "twin", "base": BASE_ID})
        assert (code, refused) == (409, {
            "message": "twin is being created right now; wait for that job or pick another name",
            "reason": "exists or busy",
        })  # fmt: skip
    _, job = await fetch_json(jp_fetch, "jobs", first["id"])
    assert job["state"] == "running" and (path / BUILDING_MARKER).exists()
    code, cancelled = await fetch_json(jp_fetch, "jobs", first["id"], method="DELETE")
    assert code == 200 and cancelled["state"] == "cancelled" and not path.exists()


# Resolvable only by asking the proxy. pip ignores a plain-http index on another host: it gets https (a CONNECT).
INDEXES = {"uv": "http://index.layenv.invalid/simple", "pip": "https://index.layenv.invalid/simple"}
ASKED = {"uv": f"GET {INDEXES['uv']}/iniconfig/ ", "pip": "CONNECT index.layenv.invalid:443 "}


@pytest.mark.parametrize(
    "service",
    [{"proxy": "recording", "index_url": url, "installer": tool} for tool, url in INDEXES.items()],
    ids=list(INDEXES),
    indirect=True,
)
async def test_the_configured_proxy_reaches_the_installer(
    jp_fetch, create_home: Path, proxy: RecordingProxy, service: dict, request
):
    """Broken by: installer_environment no longer putting LayenvService.proxy into the installer's environment
    (the installer then looks up index.layenv.invalid itself, and the proxy never hears of it)."""
    code, job = await create(jp_fetch, {"name": "proxied", "base": BASE_ID, "packages": ["iniconfig"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"])
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert job["state"] == "failed" and not (create_home / ".virtualenvs" / "proxied").exists(), job
    asked = ASKED[request.node.callspec.id]
    assert any(line.startswith(asked) for line in proxy.requests), (proxy.requests, log)
