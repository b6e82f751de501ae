"""Listings inside the racy window (issue 11 §3): a directory changed less than 2 s before a scan is not trusted by its
mtime, so the next listings read it again; only it, and the result stands when it says the same."""

from __future__ import annotations

import shutil
import time

import pytest
from envtree import Tree, make_layered_env, make_venv

from jupyter_layenv import LayenvKernelSpecManager
from jupyter_layenv.discovery import RACY_WINDOW_NS
from jupyter_layenv.discovery import build as build_module
from jupyter_layenv.discovery import scan as scan_module


def test_a_listing_in_the_racy_window_rereads_only_the_racy_directories(home: Tree, monkeypatch: pytest.MonkeyPatch):
    ksm = LayenvKernelSpecManager()
    ksm.listing()
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)  # everything so far is settled
    layer = make_layered_env(home.py311_ai, home.home / ".virtualenvs" / "racy_layer", tool="uv")
    late = home.home / ".virtualenvs" / "racy_late"
    try:
        first = ksm.listing()  # the new env is found; its directories are too recent to be trusted next time
        assert str(layer) in {env["path"] for env in first["environments"]}
        builds: list[int] = []
        inspected: list[str] = []
        real_finish, real_inspect = build_module.Builder._finish, scan_module.inspect_prefix
        monkeypatch.setattr(  # a complete build or an update: each ends in _finish
            build_module.Builder, "_finish", lambda self, *a, **k: builds.append(1) or real_finish(self, *a, **k)
        )
        monkeypatch.setattr(scan_module, "inspect_prefix", lambda p, **kw: inspected.append(p) or real_inspect(p, **kw))
        assert ksm.listing() == first
        assert builds == [] and set(inspected) <= {str(layer)}, (builds, inspected)
        make_venv(late)  # a real change inside the window is seen at once
        assert str(late) in {env["path"] for env in ksm.listing()["environments"]}
        assert builds == [1]
    finally:
        shutil.rmtree(layer)
        shutil.rmtree(late, ignore_errors=True)
