"""Browser test of the Packages view (issue 9): a real JupyterLab with the built wheel, real Chromium.

Runs ``packages_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture (its wheelhouse,
its Conda-style base); skipped, or failed under ``LAYENV_UI_REQUIRED=1``, exactly as that module's tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_panel_ui import ARTIFACTS, CHROMIUM, REPO, TOKEN, lab_server  # noqa: F401

FLOW = REPO / "tests" / "ui" / "packages_flow.cjs"


@pytest.mark.timeout(300)
def test_packages_view_add_with_plan_history_restore(lab_server: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("packages-*"):
        old.unlink()
    env = {**os.environ, "LAYENV_UI_URL": lab_server, "LAYENV_UI_TOKEN": TOKEN, "LAYENV_UI_ARTIFACTS": str(ARTIFACTS),
           "LAYENV_UI_ENV_NAME": "pkgs_ui", "LAYENV_UI_BASE_ID": "conda-py311_ai", "LAYENV_UI_PACKAGE": "iniconfig",
           "CHROMIUM": CHROMIUM}  # fmt: skip
    proc = subprocess.run(["node", str(FLOW)], env=env, cwd=REPO, capture_output=True, text=True, timeout=280,
                          check=False)  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("[pid=")]
    sys.stdout.write("\n".join(lines) + "\n")
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("[pid=")]
    assert proc.returncode == 0, "packages flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
    assert len(list(ARTIFACTS.glob("packages-*.png"))) >= 5
