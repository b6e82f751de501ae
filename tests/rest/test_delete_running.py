"""Deleting an env a kernel of this server runs from is refused (409), naming the kernels; after they stop it works.

A real server (pytest-jupyter), a real layer made by a create job, real kernels started through the server's own
``api/sessions`` and ``api/kernels``: the kernel would otherwise go on running from deleted files.
"""

from __future__ import annotations

import json
from pathlib import Path

from layenv_api import BASE_ID, create, fetch_json, follow


async def start(jp_fetch, *parts: str, body: dict) -> dict:
    return json.loads((await jp_fetch("api", *parts, method="POST", body=json.dumps(body))).body)


async def test_delete_waits_for_the_kernels_running_from_the_env(jp_fetch, clean_create_home: Path, audit):
    _, job = await create(jp_fetch, {"name": "busyenv", "base": BASE_ID})
    assert (await follow(jp_fetch, job["id"]))["state"] == "succeeded", job
    env_id, path = f"{BASE_ID}.busyenv", clean_create_home / ".virtualenvs" / "busyenv"
    kernel = f"{BASE_ID}.busyenv-py"
    session = await start(
        jp_fetch, "sessions", body={"path": "work/a.ipynb", "name": "a.ipynb", "type": "notebook",
                                    "kernel": {"name": kernel}}
    )  # fmt: skip
    bare = await start(jp_fetch, "kernels", body={"name": kernel})
    other = await start(jp_fetch, "kernels", body={"name": f"{BASE_ID}-py"})  # the base's own: not this env's
    try:
        _, listing = await fetch_json(jp_fetch, "environments")  # the panel's Delete is disabled, with the reason
        listed = {env["id"]: env for env in listing["environments"]}[env_id]["delete_blocked_reason"]
        code, body = await fetch_json(jp_fetch, "environments", env_id, method="DELETE")
        assert code == 409, body
        message = body["message"]
        assert listed == message, listing
        assert message.startswith("2 kernels are running from busyenv ("), message
        assert "notebook work/a.ipynb" in message and f"kernel {bare['id'][:8]}" in message, message
        assert other["id"][:8] not in message, message
        assert "shut them down first, then delete" in message, message
        assert path.is_dir() and (path / "pyvenv.cfg").is_file()
        _, listing = await fetch_json(jp_fetch, "environments")
        assert env_id in {env["id"] for env in listing["environments"]}
        assert (audit[-1]["action"], audit[-1]["outcome"]) == ("delete", "refused")
        assert audit[-1]["detail"] == message

        # the base of a layer whose kernel runs: refused too (it is a base: its layers go first), nothing removed
        code, body = await fetch_json(jp_fetch, "environments", BASE_ID, method="DELETE")
        assert code == 403 and body["message"].startswith("py311_ai is the base of busyenv"), body
        assert (clean_create_home / "miniconda3" / "envs" / "py311_ai" / "conda-meta").is_dir()

        await jp_fetch("api", "sessions", session["id"], method="DELETE")
        code, body = await fetch_json(jp_fetch, "environments", env_id, method="DELETE")
        assert code == 409 and body["message"].startswith("1 kernel is running from busyenv ("), body
    finally:
        for kernel_id in (bare["id"], other["id"]):
            await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    _, listing = await fetch_json(jp_fetch, "environments")
    assert {env["id"]: env for env in listing["environments"]}[env_id]["delete_blocked_reason"] is None
    code, body = await fetch_json(jp_fetch, "environments", env_id, method="DELETE")
    assert code == 204, body
    assert not path.exists()
    assert (audit[-1]["action"], audit[-1]["outcome"]) == ("delete", "succeeded")
