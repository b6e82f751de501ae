"""Browser test: a new user's walk through the panel (create, install, roll back, export, a delete refused while a
kernel runs, delete), by keyboard where one would go, with the text's contrast checked in both themes.

Runs ``newcomer_flow.cjs`` against the server of ``test_panel_ui.py``'s ``lab_server`` fixture; skipped, or failed
under ``LAYENV_UI_REQUIRED=1``, exactly as that module's tests.
"""

from __future__ import annotations

import pytest
from test_panel_ui import ARTIFACTS, REPO, lab_server, run_flow  # noqa: F401

FLOW = REPO / "tests" / "ui" / "newcomer_flow.cjs"


@pytest.mark.timeout(400)
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_new_user_walks_the_panel(lab_server: str, theme: str) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"newcomer-{theme}-*"):
        old.unlink()
    env = {"LAYENV_UI_URL": lab_server, "LAYENV_UI_THEME": theme, "LAYENV_UI_ENV_NAME": f"newbie_{theme}",
           "LAYENV_UI_BASE_ID": "conda-py311_ai", "LAYENV_UI_PACKAGE": "iniconfig"}  # fmt: skip
    returncode, lines, errors = run_flow(FLOW, env, timeout=380)
    assert returncode == 0, "newcomer flow failed:\n" + "\n".join(lines[-30:] + errors[-40:])
    assert len(list(ARTIFACTS.glob(f"newcomer-{theme}-*.png"))) >= 8
