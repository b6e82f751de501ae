"""Browser test of a fresh machine: no Conda env, then a first Conda base made from the panel (see conda_flow.cjs).

Real JupyterLab (the built wheel, as in test_panel_ui.py), real Chromium; the server's channel is the tests' local
``file://`` channel (tests/condachannel.py: synthetic packages, real py-rattler solve and install). Skipped like
test_panel_ui.py when its pieces are missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_panel_ui import ARTIFACTS, CHROMIUM, FLOW, REQUIRED, TOKEN, _missing

CONDA_FLOW = FLOW.with_name("conda_flow.cjs")


@pytest.mark.timeout(600)
def test_a_first_conda_base_from_the_panel(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"browser tests required (LAYENV_UI_REQUIRED=1) but {missing}")
        pytest.skip(missing)
    from condachannel import cached_channel, channel_url
    from jupyter_process import JupyterProcess

    channel = channel_url(cached_channel())
    home = tmp_path / "home"
    home.mkdir()
    news = tmp_path / "config/lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false"}\n', encoding="utf-8")
    config = {"LayenvService": {"conda_channels": [channel], "conda_pkgs_dir": str(tmp_path / "pkgs")}}
    lab = JupyterProcess(
        tmp_path,
        home,
        app="lab",
        jupyter=os.environ["LAYENV_UI_JUPYTER"],
        token=TOKEN,
        config_files={"jupyter_server_config.json": config},
        args=[f"--ServerApp.root_dir={home}", "--LabApp.expose_app_in_browser=True"],
        drop_env=("PYTHONPATH", "VIRTUAL_ENV", "CONDA", "MAMBA", "JUPYTER", "WORKON_HOME"),
        cwd=home,
    )
    try:
        lab.wait_ready("layenv/environments")
        env = {**os.environ, "LAYENV_UI_URL": lab.url, "LAYENV_UI_TOKEN": TOKEN, "LAYENV_UI_CHANNEL": channel,
               "LAYENV_UI_ARTIFACTS": str(ARTIFACTS), "CHROMIUM": CHROMIUM}  # fmt: skip
        proc = subprocess.run(["node", str(CONDA_FLOW)], env=env, capture_output=True, text=True, timeout=540,
                              check=False)  # fmt: skip
    finally:
        lab.stop()
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("[pid=")]
    sys.stdout.write("\n".join(lines) + "\n")
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("[pid=")]
    assert proc.returncode == 0, "browser flow failed:\n" + "\n".join(lines[-30:] + errors[-40:] + [lab.log_tail()])
    assert (home / ".conda" / "envs" / "first_base" / "conda-meta" / "history").is_file()
