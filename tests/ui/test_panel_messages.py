"""Browser test: the server's words in the sidebar (commands written `like this` show as code, never as backticks)
and what the sidebar asks of the server when kernels start and stop (the listing once or twice, not the policy).

Runs ``messages_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture; skipped, or failed
under ``LAYENV_UI_REQUIRED=1``, exactly as that module's tests.
"""

from __future__ import annotations

import pytest
from test_panel_ui import ARTIFACTS, REPO, lab_server, run_flow  # noqa: F401

FLOW = REPO / "tests" / "ui" / "messages_flow.cjs"


@pytest.mark.timeout(300)
def test_server_words_and_kernel_refreshes(lab_server: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("messages-*"):
        old.unlink()
    env = {"LAYENV_UI_URL": lab_server, "LAYENV_UI_BASE_ID": "conda-py311_ai"}
    returncode, lines, errors = run_flow(FLOW, env, timeout=280)
    assert returncode == 0, "messages flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
