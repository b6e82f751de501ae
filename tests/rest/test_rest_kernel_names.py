"""GET /layenv/kernel-names/<name>: the listed kernel a notebook's saved kernel name starts, through a real server.

JupyterLab asks it for a notebook saved under nb_conda_kernels (``conda-env-py311_ai-py``) before it starts the
kernel; the answer must be a name /api/kernelspecs lists, and that kernel must run in the env.
"""

from __future__ import annotations

import json

from layenv_api import BASE_ID, fetch_json, run_in_kernel


async def test_an_nb_conda_name_answers_the_listed_kernel_of_its_env(jp_fetch, jp_serverapp) -> None:
    status, body = await fetch_json(jp_fetch, "kernel-names", "conda-env-py311_ai-py")
    assert status == 200, body
    assert body["name"] == "conda-env-py311_ai-py"
    assert body["env"] == BASE_ID
    listed = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert body["kernel"] in listed and "conda-env-py311_ai-py" not in listed
    assert body["display_name"] == listed[body["kernel"]]["spec"]["display_name"]
    out = await run_in_kernel(jp_serverapp, body["kernel"], "import sys, layenv_base_marker as m; print(m.WHERE)")
    assert out.strip() == "py311_ai"


async def test_a_listed_name_answers_itself(jp_fetch) -> None:
    _, body = await fetch_json(jp_fetch, "kernel-names", "conda-env-py311_ai-py")
    status, again = await fetch_json(jp_fetch, "kernel-names", body["kernel"])
    assert status == 200 and again["kernel"] == body["kernel"] and again["name"] == body["kernel"]


async def test_a_name_of_no_env_is_a_404_saying_so(jp_fetch) -> None:
    status, body = await fetch_json(jp_fetch, "kernel-names", "conda-env-nosuchenv-py")
    assert status == 404, body
    assert body["reason"] == "kernel not found"
    assert "'conda-env-nosuchenv-py'" in body["message"] and "picked" in body["message"]
