"""Conda bases through a real server: create one with py-rattler from a local channel, run its kernel, build a
layer on it, export it as @EXPLICIT, delete it; cancel mid-install; bad specs; the first-base hint.

Synthetic: the channel's packages (tests/condachannel.py: the tests' own CPython and ipykernel's installed files,
packaged as Conda packages). Real: py-rattler's solver and installer, the interpreter they install, the kernel,
virtualenv and pip building the layer, the server.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest
from condachannel import MARKER_MODULE, cached_channel, channel_url
from conftest import INICONFIG_VERSION
from layenv_api import (  # noqa: F401  (fixtures)
    create,
    fetch_json,
    follow,
    no_test_pythonpath,
    processes_mentioning,
    run_in_kernel,
)

PROBE = f"""
import json, sys, {MARKER_MODULE}
print(json.dumps({{"prefix": sys.prefix, "marker": {MARKER_MODULE}.WHERE, "executable": sys.executable}}))
"""


@pytest.fixture(scope="session")
def conda_channel() -> Path:
    return cached_channel()


@pytest.fixture
def jp_home_dir(tmp_path: Path) -> Path:
    """A fresh machine: no Conda install, no env at all (only the server's own venv is listed)."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def stall_downloads() -> bool:
    return False


class _StallingChannel(http.server.SimpleHTTPRequestHandler):
    """Serves the channel's repodata; a package download starts, then never ends (until the client goes away)."""

    def do_GET(self) -> None:
        if not self.path.endswith(".tar.bz2"):
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        try:
            while not self.server.closing.is_set():  # type: ignore[attr-defined]
                self.wfile.write(b"BZh")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def channel_url_for_server(conda_channel: Path, stall_downloads: bool):
    if not stall_downloads:
        yield channel_url(conda_channel)
        return
    handler = lambda *a, **k: _StallingChannel(*a, directory=str(conda_channel), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.closing = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.closing.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def jp_server_config(channel_url_for_server: str, wheelhouse: Path, tmp_path: Path) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvService": {
            "conda_channels": [channel_url_for_server],
            "conda_pkgs_dir": str(tmp_path / "pkgs"),
            "find_links": [str(wheelhouse)],
            "offline": True,
        },
    }


async def test_no_conda_env_the_listing_and_policy_offer_a_first_base(jp_fetch, jp_home_dir: Path):
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    assert not any(env["kind"].startswith("conda") for env in listing["environments"])
    assert "No Conda environment found" in listing["hint"] and '"kind": "conda"' in listing["hint"]
    code, policy = await fetch_json(jp_fetch, "policy")
    assert code == 200 and policy["conda"]["can_create"] is True
    assert policy["conda"]["hint"] == listing["hint"]
    assert policy["conda"]["first_base"] == ["python=3.11", "ipykernel"]
    assert policy["conda"]["envs_dir"] == str(jp_home_dir / ".conda" / "envs")


async def test_conda_base_kernel_layer_explicit_export_delete(jp_fetch, jp_serverapp, jp_home_dir: Path,
                                                              conda_channel: Path):  # fmt: skip
    body = {"kind": "conda", "name": "py311", "packages": ["python=3.11", "layenv-conda-marker=1.0"]}
    code, job = await create(jp_fetch, body)
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", job
    path = jp_home_dir / ".conda" / "envs" / "py311"
    env = job["environment"]
    assert env["path"] == str(path) and env["kind"] == "conda-env" and env["kernels"]
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert "== solve" in log and "link 1/" in log and "download 1/" in log

    # the env looks like conda's own: history, one record per package, listed in environments.txt
    history = (path / "conda-meta" / "history").read_text()
    assert history.startswith("==> ") and "::python-3.11." in history and "::ipykernel-" in history
    records = {
        json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in (path / "conda-meta").glob("*.json")
    }
    assert {"python", "ipykernel", "layenv-conda-marker"} <= set(records)
    assert records["layenv-conda-marker"]["version"] == "1.0"  # the spec held: 2.0 is in the channel too
    assert (jp_home_dir / ".conda" / "environments.txt").read_text().splitlines() == [str(path)]
    assert not (path / ".layenv-building").exists()

    # its kernel runs code, with the env's own interpreter and packages
    kernel = env["kernels"][0]["name"]
    out = json.loads(await run_in_kernel(jp_serverapp, kernel, PROBE))
    assert out["prefix"] == str(path) and out["marker"] == "conda 1.0"
    assert out["executable"].startswith(str(path))

    # the listing has a base now: no more hint; a layer is built on it and inherits it
    _, listing = await fetch_json(jp_fetch, "environments")
    assert "hint" not in listing
    code, job = await create(jp_fetch, {"name": "proj", "base": env["id"], "packages": ["iniconfig"]})
    assert code == 202, job
    layer_job = await follow(jp_fetch, job["id"])
    assert layer_job["state"] == "succeeded", layer_job
    layer = layer_job["environment"]
    probe = PROBE.replace("import json,", "import iniconfig, json,").replace(
        '"prefix"', '"ini": iniconfig.__version__, "prefix"'
    )
    out = json.loads(await run_in_kernel(jp_serverapp, layer["kernels"][0]["name"], probe))
    assert out["marker"] == "conda 1.0" and out["ini"] == INICONFIG_VERSION and out["prefix"] == layer["path"]

    # export as @EXPLICIT: one URL#md5 per package, as the channel's index has them
    response = await jp_fetch("layenv", "environments", env["id"], "export", params={"format": "explicit"})
    lines = response.body.decode().splitlines()
    assert "@EXPLICIT" in lines
    urls = [line for line in lines[lines.index("@EXPLICIT") + 1 :]]
    assert len(urls) == len(records)
    repodata = json.loads((conda_channel / records["python"]["subdir"] / "repodata.json").read_text())
    indexed = {**repodata.get("packages", {}), **repodata.get("packages.conda", {})}
    for line in urls:
        url, md5 = line.split("#")
        assert url.startswith(channel_url(conda_channel)) and indexed[url.rsplit("/", 1)[1]]["md5"] == md5
    code, refused = await fetch_json(jp_fetch, "environments", layer["id"], "export", params={"format": "explicit"})
    assert code == 400 and "Conda env" in refused["message"]

    # delete: refused while a layer is built on it; then the layer, then the base, and conda's list forgets it
    code, refused = await fetch_json(jp_fetch, "environments", env["id"], method="DELETE")
    assert code == 403 and "proj" in refused["message"]
    assert (await jp_fetch("layenv", "environments", layer["id"], method="DELETE")).code == 204
    assert (await jp_fetch("layenv", "environments", env["id"], method="DELETE")).code == 204
    assert not path.exists()
    assert (jp_home_dir / ".conda" / "environments.txt").read_text().strip() == ""


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        (["python=3.11", "conda-forge::numpy"], "names a channel"),
        (["https://repo.example/x.tar.bz2"], "URL or path"),
        (["./local"], "URL or path"),
        (["num*"], "not a Conda match spec"),
        (["--override-channels"], "does not name a package"),
        (["numpy[subdir=win-64]"], "names a platform"),
        ([], "non-empty list"),
        ("python", "non-empty list"),
    ],
)
async def test_bad_specs_are_refused_and_nothing_is_made(jp_fetch, jp_home_dir: Path, packages, message: str):
    code, body = await create(jp_fetch, {"kind": "conda", "name": "bad", "packages": packages})
    assert code == 400 and message in body["message"], body
    assert not (jp_home_dir / ".conda").exists()
    code, again = await create(jp_fetch, {"kind": "conda", "name": "bad", "packages": ["python"], "channels": ["x"]})
    assert code == 400 and "channels come from the server's configuration" in again["message"]
    _, jobs = await fetch_json(jp_fetch, "jobs")
    assert jobs["jobs"] == []


@pytest.mark.parametrize("stall_downloads", [True])
async def test_cancel_mid_install_leaves_nothing(jp_fetch, jp_home_dir: Path):
    """The channel (over HTTP here) answers the solve, then stalls every package download: cancel it there."""
    code, job = await create(jp_fetch, {"kind": "conda", "name": "stuck", "packages": ["python=3.11"]})
    assert code == 202, job
    path = jp_home_dir / ".conda" / "envs" / "stuck"
    deadline = time.monotonic() + 60
    while job["step"] != "download" and time.monotonic() < deadline:
        _, job = await fetch_json(jp_fetch, "jobs", job["id"])
        await _sleep(0.1)
    assert job["step"] == "download" and job["state"] == "running" and path.is_dir(), job
    assert processes_mentioning(str(path))  # the rattler worker is at work
    code, cancelled = await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    assert code == 200 and cancelled["state"] == "cancelled", cancelled
    assert not path.exists() and not processes_mentioning(str(path))
    assert not (jp_home_dir / ".conda" / "environments.txt").exists()
    code, again = await create(jp_fetch, {"kind": "conda", "name": "stuck", "packages": ["python=3.11"]})
    assert code == 202  # the name is free again
    await fetch_json(jp_fetch, "jobs", again["id"], method="DELETE")


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_environments_txt_is_rewritten_without_the_deleted_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from jupyter_layenv.create.conda import register_environment, unregister_environment

    monkeypatch.setenv("HOME", str(tmp_path))
    listing = tmp_path / ".conda" / "environments.txt"
    listing.parent.mkdir()
    listing.write_text("/opt/conda\n/home/x/.conda/envs/keep\n")
    register_environment("/home/x/.conda/envs/new")
    register_environment("/home/x/.conda/envs/new")  # once only
    assert listing.read_text().splitlines() == ["/opt/conda", "/home/x/.conda/envs/keep", "/home/x/.conda/envs/new"]
    unregister_environment("/home/x/.conda/envs/new")
    assert listing.read_text().splitlines() == ["/opt/conda", "/home/x/.conda/envs/keep"]
    assert os.listdir(listing.parent) == ["environments.txt"]
