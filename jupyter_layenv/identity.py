"""Who acts: one name for the audit trail, env provenance and last use, in the server, the CLI and a kernel launch."""

from __future__ import annotations

import getpass
import os


def account_name() -> str:
    """Who acts, as other users should read it: the JupyterHub user this server belongs to, else the Unix user
    (a token request to a plain server carries only an anonymous identity; the CLI has none)."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
