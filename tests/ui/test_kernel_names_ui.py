"""Browser test: a notebook saved under nb_conda_kernels opens on its env's kernel, with no "Select Kernel" dialog.

Real JupyterLab (the built wheel, as in test_panel_ui.py), real Chromium, on a HOME with two Conda envs that are
kernels (so JupyterLab cannot pick one by language alone); the notebook's metadata names ``conda-env-py311_ai-py``,
a name /api/kernelspecs does not list. Runs ``kernel_names_flow.cjs``; skipped like test_panel_ui.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_panel_ui import ARTIFACTS, FLOW, require_browser, run_flow, start_lab

KERNEL_NAMES_FLOW = FLOW.with_name("kernel_names_flow.cjs")
SAVED_NAME = "conda-env-py311_ai-py"  # what nb_conda_kernels named py311_ai's Python kernel
AUTOSAVE_S = 2  # JupyterLab's autosave interval for the test (its default, 120 s, would hide a dirty notebook)
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "where",
            "metadata": {},
            "outputs": [],
            "source": ["import layenv_base_marker as m, sys\n", "print('env:', m.WHERE, sys.prefix)"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python [conda env:py311_ai]", "language": "python", "name": SAVED_NAME},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.mark.timeout(400)
def test_a_notebook_saved_under_nb_conda_kernels_starts_its_env_kernel(tmp_path: Path) -> None:
    require_browser()
    from envtree import add_pure_python_package, make_conda_prefix, site_packages

    home = tmp_path / "home"
    root = make_conda_prefix(home / "miniconda3", conda_root=True, ipykernel=True)
    env = make_conda_prefix(root / "envs" / "py311_ai", ipykernel=True)
    add_pure_python_package(site_packages(env), "layenv_base_marker", "1.0", 'WHERE = "py311_ai"\n')
    saved = json.dumps(NOTEBOOK, indent=1) + "\n"
    (home / "saved_elsewhere.ipynb").write_text(saved, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # autosave every AUTOSAVE_S s (JupyterLab's default is 120 s): a notebook made dirty by opening it would be saved
    settings = tmp_path / "config/lab/user-settings/@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"autosave": True, "autosaveInterval": AUTOSAVE_S}) + "\n", encoding="utf-8")
    lab = start_lab(tmp_path, home, {})
    try:
        env_vars = {"LAYENV_UI_URL": lab.url, "LAYENV_UI_NOTEBOOK": "saved_elsewhere.ipynb",
                    "LAYENV_UI_SAVED_NAME": SAVED_NAME, "LAYENV_UI_ENV_PATH": str(env),
                    "LAYENV_UI_AUTOSAVE_S": str(AUTOSAVE_S)}  # fmt: skip
        returncode, lines, errors = run_flow(KERNEL_NAMES_FLOW, env_vars, 360)
    finally:
        lab.stop()
    assert returncode == 0, "browser flow failed:\n" + "\n".join(lines[-30:] + errors[-40:] + [lab.log_tail()])
