"""A kernel spec manager that looks only where a test says, for the tests that build a small tree and list it."""

from __future__ import annotations

from jupyter_layenv import LayenvKernelSpecManager

# every place discovery looks by default, emptied: HOME's Conda and venv roots, .condarc files, environments.txt
NOWHERE: dict[str, list[str]] = {
    "conda_roots": [],
    "envs_dirs": [],
    "environments_files": [],
    "condarc_paths": [],
    "venv_roots": [],
    "env_paths": [],
}


def looking_only_at(**settings: object) -> LayenvKernelSpecManager:
    """The places ``settings`` names (and its other settings: ``kernel_dirs``, ``ensure_native_kernel``…), none of
    the defaults, and not the server's own prefix."""
    return LayenvKernelSpecManager(**{**NOWHERE, "include_server_prefix": False, **settings})
