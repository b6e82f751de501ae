"""A valid token whose authorizer denies the ``layenv`` resource gets 403 on every route, and nothing runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from layenv_api import BASE_ID
from tornado.httpclient import HTTPClientError

from jupyter_layenv.handlers import _ID, HANDLERS


class DenyLayenv(Authorizer):
    """Everything but jupyter_layenv (what a JupyterHub admin may configure for a user)."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return resource != "layenv"


@pytest.fixture
def jp_server_config() -> dict:
    return {"ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}, "authorizer_class": DenyLayenv}}


def _every_route() -> list[tuple[str, tuple[str, ...], str | None]]:
    """Each method of each route the extension serves, from its own table: a route added without ``@authorized``
    (or left out of a hand-kept list) fails here. A create's body names an env the test checks was not made."""
    routes = []
    for pattern, handler in HANDLERS:
        parts = pattern.removeprefix("/layenv/").replace(_ID, "\0").split("/")
        ids = iter([BASE_ID, "1"]) if parts[0] == "environments" else iter(["0" * 32])
        parts = [next(ids) if part == "\0" else part for part in parts]
        for method in ("get", "post", "put", "patch", "delete"):
            if method in vars(handler):
                create = parts == ["environments"]
                body = {"name": "denied", "base": BASE_ID} if create else {}
                routes.append(
                    (method.upper(), tuple(parts), json.dumps(body) if method in ("post", "put", "patch") else None)
                )
    return routes


ROUTES = _every_route()


async def fetch_any(jp_fetch, *parts: str, **kwargs) -> tuple[int, Any]:
    """Status and body, decoded when it is JSON: a route that lost its @authorized answers an export's YAML or a
    log's text with 200, and that must fail the 403 assertion, not a JSON decoder before it."""
    try:
        response = await jp_fetch("layenv", *parts, **kwargs)
    except HTTPClientError as err:
        response = err.response
    text = response.body.decode(errors="replace") if response.body else ""
    try:
        return response.code, json.loads(text)
    except ValueError:
        return response.code, text


@pytest.mark.parametrize(("method", "parts", "body"), ROUTES, ids=[f"{m} {'/'.join(p)}" for m, p, _ in ROUTES])
async def test_authorizer_denying_layenv_is_403(jp_fetch, create_home: Path, method, parts, body):
    code, reply = await fetch_any(jp_fetch, *parts, method=method, body=body)
    assert code == 403, reply
    assert set(reply) == {"message", "reason"} and "'layenv' resource" in reply["message"]
    assert not (create_home / ".virtualenvs" / "denied").exists()
    # the rest of the server still works for this user
    assert (await jp_fetch("api", "kernelspecs")).code == 200
