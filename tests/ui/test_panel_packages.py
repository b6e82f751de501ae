"""Browser test of the Packages view (issue 9): a real JupyterLab with the built wheel, real Chromium.

Runs ``packages_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture (its wheelhouse,
its Conda-style base); skipped, or failed under ``LAYENV_UI_REQUIRED=1``, exactly as that module's tests.
"""

from __future__ import annotations

import pytest
from test_panel_ui import ARTIFACTS, REPO, lab_server, run_flow  # noqa: F401

FLOW = REPO / "tests" / "ui" / "packages_flow.cjs"


@pytest.mark.timeout(300)
def test_packages_view_add_with_plan_history_restore(lab_server: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("packages-*"):
        old.unlink()
    env = {"LAYENV_UI_URL": lab_server, "LAYENV_UI_ENV_NAME": "pkgs_ui", "LAYENV_UI_BASE_ID": "conda-py311_ai",
           "LAYENV_UI_PACKAGE": "iniconfig"}  # fmt: skip
    returncode, lines, errors = run_flow(FLOW, env, timeout=280)
    assert returncode == 0, "packages flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
    assert len(list(ARTIFACTS.glob("packages-*.png"))) >= 5
