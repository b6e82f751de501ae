"""A real JupyterHub for the tests: the Hub process, its REST API, a browser session, a kernel over its websocket.

Everything is real: JupyterHub from PyPI run as root, configurable-http-proxy from npm, LocalProcessSpawner
starting each user's single-user server under that user's uid and groups. The users and the server install every
user can run (a copy of the test's CPython holding jupyter_layenv, copied from the checkout) come from
tests/unixusers.py; :func:`install_jupyterhub` adds JupyterHub to that install.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_process import Reply, http, open_reply

PROXY_ENV = "LAYENV_HUB_PROXY"  # path of configurable-http-proxy, else it is looked up on PATH


def proxy_command() -> str | None:
    return os.environ.get(PROXY_ENV) or shutil.which("configurable-http-proxy")


def missing_requirements() -> str | None:
    """Why a real Hub cannot run here, or None."""
    from unixusers import why_not_runnable

    reason = why_not_runnable()
    if reason:
        return reason
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (pip install -e '.[test]')"
    proxy = proxy_command()
    if proxy is None:
        return f"configurable-http-proxy not found on PATH nor in ${PROXY_ENV} (npm install configurable-http-proxy)"
    if not os.access(proxy, os.X_OK):
        return f"${PROXY_ENV}={proxy} is not an executable file (npm install configurable-http-proxy)"
    return None


def install_jupyterhub(server_prefix: Path) -> None:
    """JupyterHub in the shared server install, as ``pip install jupyter_layenv[hub]`` puts it there."""
    from envtree import install_distributions, site_packages

    install_distributions(site_packages(server_prefix), ["jupyterhub"])


# ------------------------------------------------------------------------------------------------- the Hub


@dataclass
class Hub:
    """``python -m jupyterhub`` with a config file in ``directory`` (root only), on free loopback ports."""

    directory: Path
    port: int
    config: str = ""  # jupyterhub_config.py (see hub_config)
    service_token: str = field(default_factory=lambda: uuid.uuid4().hex)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "hub.log"

    def start(self) -> None:
        (self.directory / "jupyterhub_config.py").write_text(self.config)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER", "CONDA_", "LAYENV_HUB_TEST"))
        }
        env["LAYENV_HUB_TEST_SERVICE_TOKEN"] = self.service_token
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
                cwd=self.directory,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, size: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else "(no hub log)"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyterhub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if http("GET", f"{self.url}/hub/api/", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"jupyterhub did not answer in {timeout} s:\n{self.log_tail()}")

    def api(self, method: str, path: str, body: Any = None) -> Reply:
        """The Hub's REST API with the test service's (admin) token."""
        return http(method, f"{self.url}/hub/api/{path}", self.service_token, body)

    def user_token(self, user: str) -> str:
        reply = self.api("POST", f"users/{user}/tokens", {"note": "jupyter_layenv hub test", "expires_in": 3600})
        assert reply.status in (200, 201), f"token for {user}: {reply.status} {reply.body}"
        return reply.body["token"]

    def start_servers(self, users: Iterable[str], timeout: float = 90) -> dict[str, dict]:
        """Start each user's default server and wait until all are ready; returns their server models."""
        from concurrent.futures import ThreadPoolExecutor

        users = list(users)
        with ThreadPoolExecutor(len(users)) as pool:  # the Hub answers a start after up to 10 s: ask for all at once
            replies = list(pool.map(lambda user: self.api("POST", f"users/{user}/server"), users))
        for user, reply in zip(users, replies, strict=True):
            assert reply.status in (201, 202), f"start {user}'s server: {reply.status} {reply.body}\n{self.log_tail()}"
        ready: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(ready) < len(users):
            for user in users:
                if user in ready:
                    continue
                model = self.api("GET", f"users/{user}").body
                server = (model.get("servers") or {}).get("")
                if server and server.get("ready"):
                    ready[user] = server
                elif not server or server.get("stopped"):
                    raise AssertionError(f"{user}'s server stopped while starting:\n{self.log_tail()}")
            time.sleep(0.3)
        if len(ready) < len(users):
            raise AssertionError(
                f"servers not ready in {timeout} s: {sorted(set(users) - set(ready))}\n{self.log_tail()}"
            )
        return ready

    def stop(self) -> None:
        """SIGTERM: the Hub stops the single-user servers and the proxy it started (cleanup_servers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def hub_config(
    *,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    proxy: str,
    singleuser: Sequence[str],
    args: Sequence[str],
    environment: dict[str, str],
    users: Sequence[str],
    custom_scopes: dict[str, dict],
    groups: dict[str, list[str]],
    roles: Sequence[dict],
    oauth_client_allowed_scopes: Sequence[str],
) -> str:
    """jupyterhub_config.py: DummyAuthenticator, LocalProcessSpawner, an admin service driving the test."""
    driver = {
        "name": "layenv-test-driver",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens"],
        "services": ["layenv-test"],
    }
    return f"""\
import os
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = {list(singleuser)!r}
c.Spawner.args = {list(args)!r}
c.Spawner.environment = {environment!r}
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.JupyterHub.services = [{{"name": "layenv-test", "api_token": os.environ["LAYENV_HUB_TEST_SERVICE_TOKEN"]}}]
c.JupyterHub.custom_scopes = {custom_scopes!r}
c.JupyterHub.load_groups = { ({name: {"users": members} for name, members in groups.items()})!r}
c.JupyterHub.load_roles = {[driver, *roles]!r}
c.Spawner.oauth_client_allowed_scopes = {list(oauth_client_allowed_scopes)!r}
"""


# ------------------------------------------------------------------------------ a kernel over the websocket


async def _execute(ws_url: str, token: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    try:
        msg_id = uuid.uuid4().hex
        conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        reply = None
        idle = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (reply and idle):
            raw = await asyncio.wait_for(conn.read_message(), max(0.1, deadline - loop.time()))
            if raw is None:
                raise AssertionError(f"the kernel's websocket closed; output so far: {''.join(out)!r}")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            elif kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        assert reply["status"] == "ok", f"{reply}\n{''.join(out)}"
        return "".join(out)
    finally:
        conn.close()


def execute(server_url: str, token: str, kernel_name: str, code: str, timeout: float = 60) -> str:
    """Start ``kernel_name`` through the server's REST API, run ``code`` over its websocket, return its output."""
    reply = http("POST", f"{server_url}api/kernels", token, {"name": kernel_name})
    assert reply.status == 201, f"start kernel {kernel_name}: {reply.status} {reply.body}"
    kernel_id = reply.body["id"]
    try:
        ws_url = f"{server_url.replace('http://', 'ws://')}api/kernels/{kernel_id}/channels"
        return asyncio.run(_execute(ws_url, token, code, timeout))
    finally:
        http("DELETE", f"{server_url}api/kernels/{kernel_id}", token)


# ------------------------------------------------------------------------------------------ a browser session


class Browser:
    """Cookies and redirects as a browser handles them: the Hub's login form, then OAuth into a user's server."""

    def __init__(self, base_url: str) -> None:
        import http.cookiejar

        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _send(self, request: urllib.request.Request) -> Reply:
        return open_reply(self.opener.open, request, 60)

    def cookie(self, name: str, path: str) -> str | None:
        found = [c.value for c in self.cookies if c.name == name and path.startswith(c.path)]
        return found[-1] if found else None

    def open(self, path: str) -> Reply:
        """A page view (a navigation): follows redirects, keeps cookies."""
        headers = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}
        return self._send(urllib.request.Request(self.base_url + path, headers=headers))

    def login(self, user: str) -> None:
        from urllib.parse import urlencode

        self.open("/hub/login")
        xsrf = self.cookie("_xsrf", "/hub/")
        assert xsrf, "the Hub's login page set no _xsrf cookie"
        form = urlencode({"username": user, "password": "any", "_xsrf": xsrf}).encode()
        headers = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}
        reply = self._send(urllib.request.Request(f"{self.base_url}/hub/login", data=form, headers=headers))
        assert reply.status == 200 and self.cookie("jupyterhub-session-id", "/hub/"), f"login as {user}: {reply}"

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        """What the panel's fetch() sends: the server's cookies and its _xsrf token in X-XSRFToken."""
        headers = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
        xsrf = self.cookie("_xsrf", path)
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        data = json.dumps(body).encode() if body is not None else None
        return self._send(urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers))
