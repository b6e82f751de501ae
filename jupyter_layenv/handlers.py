"""The REST API under ``<base_url>/layenv/``: parse, authorize, call the service, serialize. Nothing else."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from .identity import account_name
from .policy import PolicyError
from .service import LayenvService

T = TypeVar("T")
AUTH_RESOURCE = "layenv"
_FORBIDDEN = (
    "not allowed: send a valid token (header 'Authorization: token <token>') of a user whose authorizer "
    "permits the 'layenv' resource"
)
_XSRF = (
    "this browser request carries no valid XSRF token (the page's _xsrf cookie is missing or out of date, e.g. "
    "after the server restarted): reload the page; a script should send 'Authorization: token <token>' instead"
)
_OFFSET = re.compile(r"[0-9]{1,19}", re.ASCII)
MAX_OFFSET = 2**63 - 1


class LayenvHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE
    actions: ClassVar[dict[str, str]] = {}  # HTTP method -> the audited action it is
    _refusal_audited = False
    _refusal: str | None = None  # why this request was refused (4xx), for its one line in the server log

    @property
    def service(self) -> LayenvService:
        return self.settings["layenv_service"]

    @property
    def username(self) -> str:
        """Who acts, one name for every event of one caller: a shared token or password identifies nobody but
        the server's own account (jupyter_server makes a new anonymous id per token request); an identity
        provider that knows users (JupyterHub's) names the user."""
        user = getattr(self, "_current_user", None)
        if user is None:
            return f"unauthenticated ({self.request.remote_ip})"
        if type(self.identity_provider).__module__ == "jupyter_server.auth.identity":
            return account_name()
        return user.username

    def check_xsrf_cookie(self) -> None:
        """A browser request without its XSRF token: say so, not "ask your administrator"."""
        try:
            super().check_xsrf_cookie()
        except web.HTTPError as err:
            if err.status_code != 403:
                raise
            raise web.HTTPError(403, _XSRF, reason="xsrf") from None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        limit = self.settings["layenv_max_body_size"]
        if len(self.request.body or b"") > limit:
            raise web.HTTPError(
                413, f"request body over {limit} bytes: send fewer or shorter package specs", reason="body too large"
            )

    async def call(self, awaitable: Awaitable[T]) -> T:
        """The service's refusals become the error JSON with their status."""
        try:
            return await awaitable
        except PolicyError as err:
            self._refusal_audited = True  # the service records its own refusals
            error = web.HTTPError(err.status, err.message.replace("%", "%%"), reason=err.reason)
            error.layenv_details = err.details  # type: ignore[attr-defined]
            raise error from None

    @property
    def log(self) -> Any:  # type: ignore[override]
        """The request's line in the server log (jupyter_server's log_request) says why a call was refused."""
        log = super().log
        return _RefusalLog(log, {"reason": self._refusal}) if self._refusal else log

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A refusal is logged once, by the request's own line (see :attr:`log`), not a second time by tornado."""
        if isinstance(value, web.HTTPError) and 400 <= value.status_code < 500:
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The contract's ``{"message", "reason"}``, with a message saying what to do even for a bare 403."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        reply: dict[str, Any]  # the JSON body: a raised error's details may add fields of any type
        if status_code == 403 and not getattr(self, "_current_user", None):
            reply = {"message": _FORBIDDEN, "reason": "no token"}  # not the xsrf/cookie detail: a token fixes it
        elif status_code == 403 and isinstance(exc, web.HTTPError) and exc.reason is None:
            reply = {"message": self._not_authorized(), "reason": "not authorized"}  # the authorizer said no
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            reply = {**getattr(exc, "layenv_details", {}), "message": _formatted(exc), "reason": exc.reason}
        elif status_code == 403:
            reply = {"message": _FORBIDDEN, "reason": "forbidden"}
        elif status_code >= 500:
            reply = {"message": "internal error in jupyter_layenv: see the server log", "reason": "server error"}
        else:
            reply = {"message": self._reason, "reason": self._reason}
        self._audit_refusal(status_code, reply["message"])
        if 400 <= status_code < 500:
            self._refusal = reply["message"]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(reply))

    def _audit_refusal(self, status_code: int, message: str) -> None:
        """Refusals before the service is reached (bad JSON, no token, XSRF, the authorizer) are recorded too."""
        action = self.actions.get(self.request.method or "")
        if action is None or self._refusal_audited or not 400 <= status_code < 500:
            return
        env = self.path_args[0] if self.path_args else _body_name(self.request.body)
        self.service.audit.emit(action, self.username, env, "refused", detail=message)

    def _not_authorized(self) -> str:
        action = "read" if self.request.method in ("GET", "HEAD") else "write"
        return not_authorized(action, getattr(self, "layenv_missing_scope", None))

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as err:
            raise web.HTTPError(400, f"the body must be a JSON object: {err}", reason="bad json") from None
        except RecursionError:
            raise web.HTTPError(400, "the body's JSON is nested too deeply", reason="bad json") from None

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def job_url(self, job_id: str) -> str:
        return url_path_join(self.base_url, "layenv", "jobs", job_id)


class _RefusalLog(logging.LoggerAdapter):
    """A logger whose argument-less warnings (the request line of a 4xx) end with the refusal's message."""

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        super().warning(f"{msg}: {self.extra['reason']}" if not args and self.extra else msg, *args, **kwargs)


def not_authorized(action: str, scope: str | None = None) -> str:
    """What a caller the authorizer refuses ``action`` on ``layenv`` can do about it (the scope: JupyterHub's)."""
    scope = scope or f"custom:jupyter_server:{action}:{AUTH_RESOURCE}"
    what = (
        "may not list environments here" if action == "read" else "may list environments but not create or delete them"
    )
    return (
        f"you {what}: the server's authorizer does not give you '{action}' on the '{AUTH_RESOURCE}' resource "
        f"(on JupyterHub, the scope {scope}); ask your administrator"
    )


def _body_name(body: bytes | None) -> str:
    """The env name a create's body asks for, as far as it can be read ("?" otherwise)."""
    match = re.search(rb'"name"\s*:\s*"([^"\\]{1,64})"', body or b"")
    return match.group(1).decode("utf-8", "replace") if match else "?"


def attachment(filename: str) -> str:
    """RFC 6266 Content-Disposition: a plain-ASCII fallback, and the real name as UTF-8 in ``filename*``."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _formatted(exc: web.HTTPError) -> str:
    try:
        return exc.log_message % exc.args  # type: ignore[operator]
    except (TypeError, ValueError):
        return str(exc.log_message)


class PolicyHandler(LayenvHandler):
    """What applies to the caller: where it may create, the rules, and whether it may write at all."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        allowed = self.authorizer.is_authorized(self, self.current_user, "write", AUTH_RESOURCE)
        refused = None if allowed else not_authorized("write", getattr(self, "layenv_missing_scope", None))
        self.send(await self.call(self.service.policy_for(refused)))


class EnvironmentsHandler(LayenvHandler):
    actions: ClassVar[dict[str, str]] = {"POST": "create"}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.call(self.service.listing()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        job = await self.call(self.service.create(self.json_body(), self.username))
        self.set_header("Location", self.job_url(job.id))
        self.send(job.public(), 202)


class EnvironmentHandler(LayenvHandler):
    actions: ClassVar[dict[str, str]] = {"DELETE": "delete"}

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        self.send(await self.call(self.service.environment(env_id)))

    @web.authenticated
    @authorized
    async def delete(self, env_id: str) -> None:
        await self.call(self.service.delete(env_id, self.username))
        self.set_status(204)
        self.finish()


class ExportHandler(LayenvHandler):
    actions: ClassVar[dict[str, str]] = {"GET": "export"}

    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        fmt = self.get_query_argument("format", "environment.yml")
        filename, text = await self.call(self.service.export(env_id, fmt, self.username))
        self.set_header(
            "Content-Type", "text/yaml; charset=utf-8" if fmt.endswith(".yml") else "text/plain; charset=utf-8"
        )
        self.set_header("Content-Disposition", attachment(filename))
        self.finish(text)


class PackagesHandler(LayenvHandler):
    """Change a layer's packages: a dry run answers the plan (200), a change is a job (202)."""

    @web.authenticated
    @authorized
    async def post(self, env_id: str) -> None:
        outcome = await self.call(self.service.lifecycle.change(env_id, self.json_body(), self.username))
        if outcome.job_id:
            self.set_header("Location", self.job_url(outcome.job_id))
        self.send(outcome.body, outcome.status)


class RevisionsHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def get(self, env_id: str) -> None:
        self.send(await self.call(self.service.lifecycle.revisions(env_id)))


class RestoreHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def post(self, env_id: str, number: str) -> None:
        job = await self.call(self.service.lifecycle.restore(env_id, number, self.username))
        self.set_header("Location", self.job_url(job.id))
        self.send(job.public(), 202)


class JobsHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send({"jobs": await self.call(self.service.list_jobs())})


class JobHandler(LayenvHandler):
    actions: ClassVar[dict[str, str]] = {"DELETE": "cancel"}

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = await self.call(self.service.job(job_id))
        self.send(job.public())

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        job = await self.call(self.service.cancel(job_id, self.username))
        self.send(job.public())


class JobLogHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        raw = self.get_query_argument("offset", "0")
        if not _OFFSET.fullmatch(raw) or int(raw) > MAX_OFFSET:
            raise web.HTTPError(
                400, f"offset must be a byte count >= 0 (at most {MAX_OFFSET}), not {raw[:40]!r}", reason="bad offset"
            )
        offset = int(raw)
        data = await self.call(self.service.job_log(job_id, offset))
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Layenv-Next-Offset", str(offset + len(data)))
        self.finish(data)


class UsageHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.call(self.service.housekeeping.usage()))


class CleanHandler(LayenvHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.send(await self.call(self.service.housekeeping.clean(self.json_body(), self.username)))


class KernelNameHandler(LayenvHandler):
    """The listed kernel a notebook's saved kernel name starts (JupyterLab asks before it starts the kernel)."""

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.send((await self.call(self.service.kernel_name(name))).public())


_ID = r"([^/]+)"
HANDLERS = [
    (r"/layenv/policy", PolicyHandler),
    (r"/layenv/usage", UsageHandler),
    (r"/layenv/clean", CleanHandler),
    (r"/layenv/environments", EnvironmentsHandler),
    (rf"/layenv/environments/{_ID}/export", ExportHandler),
    (rf"/layenv/environments/{_ID}/packages", PackagesHandler),
    (rf"/layenv/environments/{_ID}/revisions", RevisionsHandler),
    (rf"/layenv/environments/{_ID}/revisions/{_ID}/restore", RestoreHandler),
    (rf"/layenv/environments/{_ID}", EnvironmentHandler),
    (rf"/layenv/kernel-names/{_ID}", KernelNameHandler),
    (r"/layenv/jobs", JobsHandler),
    (rf"/layenv/jobs/{_ID}/log", JobLogHandler),
    (rf"/layenv/jobs/{_ID}", JobHandler),
]
