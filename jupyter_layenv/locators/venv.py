"""Virtualenvs and venvs (plain, uv, virtualenvwrapper) in venv roots and nested inside Conda envs.

A venv is a prefix with ``pyvenv.cfg``; uv marks its own with ``uv = …``. The seed's layout puts
project venvs one level inside a Conda env (``envs/py311_ai/myexp_env``).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import SOURCE_NESTED, SOURCE_VENV_ROOT, Candidate, Located, ScanChildren, scan_into


def locate(venv_roots: Iterable[str], scan: ScanChildren) -> Located:
    located = Located()
    for root in venv_roots:
        scan_into(located, scan, root, SOURCE_VENV_ROOT)
    return located


def locate_nested(conda_prefixes: Iterable[str], scan: ScanChildren) -> Located:
    """Venvs one level inside Conda prefixes; the prefix's own mtime (a discovery dep) tells when one appears."""
    located = Located()
    for prefix in conda_prefixes:
        children, skipped = scan(prefix)
        located.candidates.extend(Candidate(child, SOURCE_NESTED) for child in children if child != prefix)
        located.skipped.extend(skipped)
    return located
