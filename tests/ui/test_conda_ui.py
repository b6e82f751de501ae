"""Browser test of a fresh machine: no Conda env, then a first Conda base made from the panel (see conda_flow.cjs).

Real JupyterLab (the built wheel, as in test_panel_ui.py), real Chromium; the server's channel is the tests' local
``file://`` channel (tests/condachannel.py: synthetic packages, real py-rattler solve and install). Skipped like
test_panel_ui.py when its pieces are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_panel_ui import FLOW, require_browser, run_flow, start_lab

CONDA_FLOW = FLOW.with_name("conda_flow.cjs")


@pytest.mark.timeout(600)
def test_a_first_conda_base_from_the_panel(tmp_path: Path) -> None:
    require_browser()
    from condachannel import cached_channel, channel_url

    channel = channel_url(cached_channel())
    home = tmp_path / "home"
    home.mkdir()
    config = {"LayenvService": {"conda_channels": [channel], "conda_pkgs_dir": str(tmp_path / "pkgs")}}
    lab = start_lab(tmp_path, home, config)
    try:
        returncode, lines, errors = run_flow(CONDA_FLOW, {"LAYENV_UI_URL": lab.url, "LAYENV_UI_CHANNEL": channel}, 540)
    finally:
        lab.stop()
    assert returncode == 0, "browser flow failed:\n" + "\n".join(lines[-30:] + errors[-40:] + [lab.log_tail()])
    assert (home / ".conda" / "envs" / "first_base" / "conda-meta" / "history").is_file()
