"""JupyterHub scopes for the ``layenv`` API: an administrator can let users list environments but not create them.

In a JupyterHub single-user server (JupyterHub >= 5, whose singleuser server is a jupyter_server extension)::

    c.ServerApp.authorizer_class = "jupyter_layenv.hub.LayenvHubAuthorizer"

Requests on the ``layenv`` resource then need the JupyterHub custom scope
``custom:jupyter_server:<action>:layenv`` (or ``custom:jupyter_server:<action>:*``) for this server's user or
server: reads (listing, export, jobs) are action ``read``; create, delete and cancel are ``write``. Every other
resource (files, kernels, terminals…) is decided by :class:`JupyterHubAuthorizer`, so the rest of the server works
as it does without this class. ``write`` implies ``read`` only where the administrator says so, by listing the read
scope in the write scope's ``subscopes`` in ``c.JupyterHub.custom_scopes``. See docs/shared-servers.md.

This is the only module that imports jupyterhub (an optional dependency: ``pip install 'jupyter_layenv[hub]'``).
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Unicode, default

try:
    from jupyterhub.singleuser.extension import JupyterHubAuthorizer
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "jupyter_layenv.hub.LayenvHubAuthorizer needs JupyterHub >= 5 installed in the single-user server's "
        "environment: pip install 'jupyter_layenv[hub]'"
    ) from err

RESOURCE = "layenv"
SCOPE_PREFIX = "custom:jupyter_server"


def layenv_scope(action: str) -> str:
    """The custom scope an administrator grants for ``action`` (``read`` or ``write``) on jupyter_layenv."""
    return f"{SCOPE_PREFIX}:{action}:{RESOURCE}"


def required_scopes(action: str, user: str, server_name: str) -> set[str]:
    """Any one of these lets a request do ``action`` on the ``layenv`` API of ``user``'s server ``server_name``.

    The filters are the ones a JupyterHub token can carry for this server: ``!user=<user>`` (a role's ``!user``, or
    an API token) and ``!server=<user>/<server>`` (an OAuth token limited by ``Spawner.oauth_client_allowed_scopes``).
    An unfiltered scope matches both. ``!group=`` filters are not resolved by JupyterHub's ``check_scopes``.
    """
    filters = (f"!user={user}", f"!server={user}/{server_name}")
    return {f"{SCOPE_PREFIX}:{action}:{resource}{f}" for resource in (RESOURCE, "*") for f in filters}


class LayenvHubAuthorizer(JupyterHubAuthorizer):
    """``custom:jupyter_server:<action>:layenv`` scopes for the ``layenv`` resource; the base class for the rest."""

    server_user = Unicode(
        config=True, help="The JupyterHub user owning this server (default: $JUPYTERHUB_USER, set by the Hub)."
    )
    server_name = Unicode(
        config=True,
        help="The name of this server, '' for the user's default server (default: $JUPYTERHUB_SERVER_NAME).",
    )

    @default("server_user")
    def _default_server_user(self) -> str:
        return os.environ.get("JUPYTERHUB_USER", "")

    @default("server_name")
    def _default_server_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVER_NAME", "")

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        # the base class checks this server's access scope (access:servers!server=…) for every resource
        if not super().is_authorized(handler, user, action, resource):
            return False
        if resource != RESOURCE:
            return True
        if not self.server_user:
            self.log.error(
                "jupyter_layenv: refusing %s on %s: $JUPYTERHUB_USER is not set, so this server's owner is "
                "unknown (is this a JupyterHub single-user server?)",
                action,
                resource,
            )
            return False
        have = self.hub_auth.check_scopes(required_scopes(action, self.server_user, self.server_name), user.hub_user)
        if not have:
            needed = layenv_scope(action)
            self.log.debug(
                "jupyter_layenv: %s may not %s: the JupyterHub scope %s is missing", user.username, action, needed
            )
            if handler is not None:
                # read by the handler's error reply, so the 403 names the missing scope
                handler.layenv_missing_scope = needed
        return bool(have)
