"""Browser test: a slow package change in the Packages view (progress, live log, listed in the sidebar, cancelled)
and a package no index has.

Runs ``slow_change_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture (its wheelhouse
has the never-ending ``slowbuild`` sdist); skipped, or failed under ``LAYENV_UI_REQUIRED=1``, as that module's tests.
"""

from __future__ import annotations

import pytest
from test_panel_ui import ARTIFACTS, REPO, lab_server, run_flow  # noqa: F401

FLOW = REPO / "tests" / "ui" / "slow_change_flow.cjs"


@pytest.mark.timeout(400)
def test_a_slow_package_change_is_followed_and_cancelled(lab_server: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("slowchange-*"):
        old.unlink()
    env = {"LAYENV_UI_URL": lab_server, "LAYENV_UI_ENV_NAME": "slow_ui", "LAYENV_UI_BASE_ID": "conda-py311_ai",
           "LAYENV_UI_SLOW_PACKAGE": "slowbuild", "LAYENV_UI_MISSING_PACKAGE": "no-such-package-anywhere"}  # fmt: skip
    returncode, lines, errors = run_flow(FLOW, env, timeout=380)
    assert returncode == 0, "slow change flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
