"""Browser test of long and short environment names in the sidebar (and its paths, kernel names and Storage with the
filter set): a real JupyterLab with the built wheel, real Chromium.

Runs ``names_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture; skipped, or failed
under ``LAYENV_UI_REQUIRED=1``, exactly as that module's tests.
"""

from __future__ import annotations

import pytest
from test_panel_ui import ARTIFACTS, REPO, lab_server, run_flow  # noqa: F401

FLOW = REPO / "tests" / "ui" / "names_flow.cjs"
LONG_NAME = "spectroscopy_campaign_2026_calibration_with_the_new_detector_v2"  # 63 of the 64 allowed


@pytest.mark.timeout(300)
def test_a_long_name_reads_whole_beside_its_actions(lab_server: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("names-*"):
        old.unlink()
    env = {"LAYENV_UI_URL": lab_server, "LAYENV_UI_ENV_NAME": LONG_NAME, "LAYENV_UI_BASE_ID": "conda-py311_ai"}
    returncode, lines, errors = run_flow(FLOW, env, timeout=280)
    assert returncode == 0, "names flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
    assert len(list(ARTIFACTS.glob("names-*.png"))) >= 1
