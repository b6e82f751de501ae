"""Conda bases through a real server: create one with py-rattler from a local channel, run its kernel, build a
layer on it, export it as @EXPLICIT, delete it; cancel mid-install; bad specs; the first-base hint.

Synthetic: the channel's packages (tests/condachannel.py: the tests' own CPython and ipykernel's installed files,
packaged as Conda packages). Real: py-rattler's solver and installer, the interpreter they install, the kernel,
virtualenv and pip building the layer, the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from condachannel import DANGLING_PYTHON, MARKER_MODULE, SUBDIR, cached_channel, channel_url
from envtree import make_conda_prefix, make_venv
from jupyter_process import JUPYTER, JupyterProcess
from layenv_api import create, fetch_json, follow, processes_mentioning, run_in_kernel, wait_for_step
from mounts import read_only, tmpfs
from wheelhouse import INICONFIG_VERSION

from jupyter_layenv.usage import sizing

PROBE = f"""
import json, sys, {MARKER_MODULE}
print(json.dumps({{"prefix": sys.prefix, "marker": {MARKER_MODULE}.WHERE, "executable": sys.executable}}))
"""


def shown(count: int) -> str:
    """A size as the quota's refusal writes it: bytes, then KiB, MiB with one decimal."""
    if count < 1024:
        return f"{count} bytes"
    return f"{count / 1024:.1f} KiB" if count < 1024 * 1024 else f"{count / 1024 / 1024:.1f} MiB"


@pytest.fixture(scope="session")
def conda_channel() -> Path:
    return cached_channel()


@pytest.fixture
def jp_home_dir(empty_home: Path) -> Path:
    return empty_home


@pytest.fixture
def stall_downloads() -> bool:
    return False


class _StallingChannel(http.server.SimpleHTTPRequestHandler):
    """Serves the channel's repodata; a package download starts, then never ends (until the client goes away)."""

    def do_GET(self) -> None:
        if not self.path.endswith(".tar.bz2"):
            super().do_GET()
            return
        if self.server.release.is_set():  # type: ignore[attr-defined]
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        try:
            while not self.server.closing.is_set() and not self.server.release.is_set():  # type: ignore[attr-defined]
                self.wfile.write(b"BZh")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def stalling_channel(channel: Path, release: threading.Event | None = None) -> Iterator[str]:
    """The channel over HTTP, where every package download stalls: a create waits in its download step."""
    handler = functools.partial(_StallingChannel, directory=str(channel))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.closing = threading.Event()  # type: ignore[attr-defined]
    server.release = release or threading.Event()  # type: ignore[attr-defined]  # set: packages are served
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.closing.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


@pytest.fixture
def channel_release() -> threading.Event:
    """Set it to let a stalling channel serve its packages."""
    return threading.Event()


@pytest.fixture
def channel_url_for_server(conda_channel: Path, stall_downloads: bool, channel_release: threading.Event):
    if not stall_downloads:
        yield channel_url(conda_channel)
        return
    with stalling_channel(conda_channel, channel_release) as url:
        yield url


@pytest.fixture
def policy() -> dict:
    return {}


@pytest.fixture
def group_root(tmp_path: Path) -> Path:
    """A group root of the server's own group (so it is a member): setgid and group-writable, as documented."""
    root = tmp_path / "groups" / "physics"
    root.mkdir(parents=True)
    root.chmod(0o2775)
    return root


@pytest.fixture
def discovery_config(request: pytest.FixtureRequest, jp_home_dir: Path) -> dict:
    """More LayenvKernelSpecManager and LayenvService settings (a test parametrizes them, indirectly); ``symlinks``:
    {link: target} made in the HOME before the server starts."""
    config = dict(getattr(request, "param", {}))
    for link, target in config.pop("symlinks", {}).items():
        (jp_home_dir / target).mkdir(parents=True)
        (jp_home_dir / link).symlink_to(jp_home_dir / target)
    return config


@pytest.fixture
def jp_server_config(
    channel_url_for_server: str,
    wheelhouse: Path,
    tmp_path: Path,
    policy: dict,
    group_root: Path,
    discovery_config: dict,
) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_layenv": True}},
        "LayenvPolicy": policy,
        "LayenvKernelSpecManager": {
            "group_roots": [str(group_root.parent / "*")],
            **discovery_config.get("LayenvKernelSpecManager", {}),
        },
        "LayenvService": {
            "conda_channels": [channel_url_for_server],
            "conda_pkgs_dir": str(tmp_path / "pkgs"),
            "find_links": [str(wheelhouse)],
            "offline": True,
            **discovery_config.get("LayenvService", {}),
        },
    }


async def test_no_conda_env_the_listing_and_policy_offer_a_first_base(jp_fetch, jp_home_dir: Path):
    code, listing = await fetch_json(jp_fetch, "environments")
    assert code == 200
    assert not any(env["kind"].startswith("conda") for env in listing["environments"])
    assert "No Conda environment found" in listing["hint"] and '"kind": "conda"' in listing["hint"]
    code, policy = await fetch_json(jp_fetch, "policy")
    assert code == 200 and policy["conda"]["can_create"] is True
    assert policy["hint"] == listing["hint"]
    assert policy["conda"]["first_base"] == ["python=3.11", "ipykernel"]
    assert policy["conda"]["envs_dir"] == str(jp_home_dir / ".conda" / "envs")


async def test_conda_base_kernel_layer_explicit_export_delete(jp_fetch, jp_serverapp, jp_home_dir: Path,
                                                              conda_channel: Path):  # fmt: skip
    body = {"kind": "conda", "name": "py311", "packages": ["python=3.11", "layenv-conda-marker=1.0"]}
    code, job = await create(jp_fetch, body)
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
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
    # environment.yml lists every Conda package too, python included (its record lists thousands of files)
    response = await jp_fetch("layenv", "environments", env["id"], "export", params={"format": "environment.yml"})
    exported = response.body.decode()
    assert f"python={records['python']['version']}=" in exported and "ipykernel=" in exported
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
    job = await wait_for_step(jp_fetch, job["id"], "download")
    assert job["step"] == "download" and job["state"] == "running" and path.is_dir(), job
    assert processes_mentioning(str(path))  # the rattler worker is at work
    code, cancelled = await fetch_json(jp_fetch, "jobs", job["id"], method="DELETE")
    assert code == 200 and cancelled["state"] == "cancelled", cancelled
    assert not path.exists() and not processes_mentioning(str(path))
    assert not (jp_home_dir / ".conda" / "environments.txt").exists()
    code, again = await create(jp_fetch, {"kind": "conda", "name": "stuck", "packages": ["python=3.11"]})
    assert code == 202  # the name is free again
    await fetch_json(jp_fetch, "jobs", again["id"], method="DELETE")


async def test_a_conda_env_that_fails_its_last_step_is_removed_and_forgotten_by_conda(
    jp_fetch, jp_home_dir: Path, audit
):
    """The last step, after the env is complete and listed in ~/.conda/environments.txt, checks that discovery lists
    it. A package whose bin/python points at nothing makes discovery skip it (a broken interpreter, no kernel): the
    job fails, the env is removed and so is its line in environments.txt, the name is free, the audit says so."""
    body = {"kind": "conda", "name": "dangling", "packages": [DANGLING_PYTHON], "ipykernel": False}
    code, job = await create(jp_fetch, body)
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "failed" and job["step"] == "register", await _log(jp_fetch, job)
    path = jp_home_dir / ".conda" / "envs" / "dangling"
    error = job["error"]
    assert error.startswith(f"{path} was built but is not listed: discovery skips it (broken interpreter: "), error
    assert f"{path}/bin/python is a dangling" in error and "leave that package out" in error, error
    assert error.endswith(f"; {path} was removed, create it again"), error
    assert not path.exists()
    assert (jp_home_dir / ".conda" / "environments.txt").read_text().splitlines() == []
    assert (audit[-1]["action"], audit[-1]["outcome"], audit[-1]["detail"]) == ("create", "failed", error)
    code, again = await create(jp_fetch, {"kind": "conda", "name": "dangling", "packages": ["python=3.11"]})
    assert code == 202, again  # the name is free: no "exists already"
    await fetch_json(jp_fetch, "jobs", again["id"], method="DELETE")


async def test_a_solve_that_fails_says_why_on_its_first_line(jp_fetch, jp_home_dir: Path):
    """The first line of a job's error is what the panel and the CLI show: py-rattler's reason (a typo'd package),
    not the first line of the worker's output (the channels it solved from)."""
    code, job = await create(jp_fetch, {"kind": "conda", "name": "typo", "packages": ["pythn=3.11"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "failed" and job["step"] == "solve", await _log(jp_fetch, job)
    first = job["error"].splitlines()[0]
    assert first.startswith("solve failed (py-rattler exited with 1): ") and "pythn" in first, job["error"]
    assert "channels:" in job["error"]  # the rest of the output is still there, under the first line
    assert not (jp_home_dir / ".conda" / "envs" / "typo").exists()


UNSCANNED = {
    "LayenvService": {"conda_envs_dir": "~/scratch/conda-envs"},
    "LayenvKernelSpecManager": {"environments_files": [], "group_roots": []},  # no group root to create in either
}


@pytest.mark.parametrize("discovery_config", [UNSCANNED], indirect=True)
async def test_a_conda_env_discovery_would_not_list_is_refused_before_anything_is_built(
    jp_fetch, jp_home_dir: Path, audit
):
    """LayenvService.conda_envs_dir names a directory discovery does not scan, and discovery does not read the
    environments.txt a new Conda env is recorded in: the env would be built, then not listed, then removed again.
    The server knows that before building: it refuses the create at once, naming the directory and the settings."""
    envs_dir = jp_home_dir / "scratch" / "conda-envs"
    code, body = await create(jp_fetch, {"kind": "conda", "name": "hidden", "packages": ["python=3.11"]})
    assert code == 500, body
    message = body["message"]
    assert message.startswith(f"{envs_dir / 'hidden'} would not be listed, so it is not built: "), message
    assert f"discovery does not look in {envs_dir} (LayenvService.conda_envs_dir)" in message, message
    assert "LayenvKernelSpecManager.envs_dirs" in message and "LayenvKernelSpecManager.environments_files" in message
    assert str(jp_home_dir / ".conda" / "environments.txt") in message, message
    assert not (jp_home_dir / "scratch").exists() and not (jp_home_dir / ".conda").exists()
    _, jobs = await fetch_json(jp_fetch, "jobs")
    assert jobs["jobs"] == []
    assert [(e["action"], e["outcome"], e["detail"]) for e in audit] == [("create", "refused", message)], audit
    code, policy = await fetch_json(jp_fetch, "policy")  # the panel says so before anyone tries
    refused = message.replace(f"{envs_dir / 'hidden'} would not", f"a new Conda env in {envs_dir} would not")
    assert policy["conda"]["can_create"] is False and policy["conda"]["refused"] == refused.replace(
        ", so it is not built", ""
    ), policy["conda"]


ALIASED = {
    "symlinks": {"conda-envs": "scratch/conda-envs"},
    "LayenvService": {"conda_envs_dir": "~/scratch/conda-envs"},
    "LayenvKernelSpecManager": {"environments_files": [], "envs_dirs": ["~/conda-envs"]},
}


@pytest.mark.parametrize("discovery_config", [ALIASED], indirect=True)
async def test_a_conda_env_listed_under_another_name_of_its_envs_dir_is_created(jp_fetch, jp_home_dir: Path):
    """envs_dirs names a symlink to conda_envs_dir: not refused, and the last step finds the env under that name."""
    code, job = await create(jp_fetch, {"kind": "conda", "name": "aliased", "packages": ["python=3.11"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
    assert job["environment"]["path"] == str(jp_home_dir / "conda-envs" / "aliased"), job["environment"]
    assert (jp_home_dir / "scratch" / "conda-envs" / "aliased" / "conda-meta" / "history").is_file()


async def _log(jp_fetch, job: dict) -> str:
    """A failed job's error and log, for the assertion message."""
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode(errors="replace")
    return f"{job['error']}\n{log[-4000:]}"


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


def _cli(*args: str, home: Path, channel: str, pkgs: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HOME": str(home), "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_CONFIG_DIR": str(home / "config")}
    config = [f"--LayenvService.conda_channels=['{channel}']", f"--LayenvService.conda_pkgs_dir={pkgs}"]
    return subprocess.run([JUPYTER, "layenv", *args, *config], capture_output=True, text=True, env=env, timeout=300)


def test_cli_offers_then_creates_a_first_base(tmp_path: Path, conda_channel: Path):
    home, pkgs, url = tmp_path / "cli-home", tmp_path / "pkgs", channel_url(conda_channel)
    home.mkdir()
    command = "jupyter layenv create py311 --conda python=3.11 --conda ipykernel"
    for verb in ("list", "doctor"):
        proc = _cli(verb, home=home, channel=url, pkgs=pkgs)
        assert proc.returncode == 0 and "No Conda environment found" in proc.stdout and command in proc.stdout
    assert command in json.loads(_cli("list", "--json", home=home, channel=url, pkgs=pkgs).stdout)["hint"]

    proc = _cli("create", "py311", "--conda", "conda-forge::python", home=home, channel=url, pkgs=pkgs)
    assert proc.returncode == 2 and "names a channel" in proc.stderr and not (home / ".conda").exists()
    # conda's own name for its install root (`conda activate base` goes there; `conda create -n base` is refused)
    proc = _cli("create", "base", "--conda", "python=3.11", home=home, channel=url, pkgs=pkgs)
    assert proc.returncode == 2 and "what conda calls its install root" in proc.stderr, proc.stderr
    assert not (home / ".conda").exists()
    proc = _cli("create", "py311", "--conda", "python=3.11", "--conda", "layenv-conda-marker", home=home, channel=url,
                pkgs=pkgs)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "link 1/" in proc.stdout and "created" in proc.stderr
    prefix = home / ".conda" / "envs" / "py311"
    out = subprocess.run([prefix / "bin" / "python", "-c", f"import ipykernel, {MARKER_MODULE} as m; print(m.WHERE)"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.stdout.strip() == "conda 2.0"  # the newest version the channel has
    listed = _cli("list", home=home, channel=url, pkgs=pkgs).stdout
    assert "No Conda environment found" not in listed and "conda-py311-py" in listed
    explicit = _cli("export", "py311", "--format", "explicit", home=home, channel=url, pkgs=pkgs).stdout
    assert "@EXPLICIT" in explicit and f"{url}/{SUBDIR}/python-3.11" in explicit
    yml = yaml.safe_load(_cli("export", "py311", home=home, channel=url, pkgs=pkgs).stdout)
    assert yml["channels"] == [url]  # the file:// channel it came from, which conda env create can read again
    assert _cli("delete", "py311", home=home, channel=url, pkgs=pkgs).returncode == 0
    assert not prefix.exists()


def test_server_log_hint_and_recovery_of_a_killed_servers_conda_job(tmp_path: Path, conda_channel: Path):
    """The server says in its log how to make a first base; a server killed mid-install leaves a half-made env
    (its guard kills the rattler worker), which the next server removes before it answers, failing the job."""
    home = tmp_path / "server-home"
    home.mkdir()
    prefix = home / ".conda" / "envs" / "killed"
    with stalling_channel(conda_channel) as url:
        config = {"jupyter_server_config.json": {"LayenvService": {"conda_channels": [url]}}}
        server = JupyterProcess(tmp_path / "one", home, config_files=config)
        try:
            server.wait_ready()
            deadline = time.monotonic() + 30
            while "No Conda environment found" not in server.log_tail(20000) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "jupyter layenv create py311 --conda python=3.11" in server.log_tail(20000)
            status, job = server.request("POST", "layenv/environments",
                                         {"kind": "conda", "name": "killed", "packages": ["python=3.11"]})  # fmt: skip
            assert status == 202, job
            assert server.wait_for_step(job["id"], "download")["step"] == "download"
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
        finally:
            server.stop()
        deadline = time.monotonic() + 15  # the step's guard kills the worker once its server is gone
        while processes_mentioning(str(prefix)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert prefix.is_dir() and not processes_mentioning(str(prefix))  # a half-made env, nothing running
        again = JupyterProcess(tmp_path / "one", home, config_files=config)
        try:
            again.wait_ready()
            recovered = again.get(f"layenv/jobs/{job['id']}")
        finally:
            again.stop()
    assert recovered["state"] == "failed" and "interrupted: the server running it stopped" in recovered["error"]
    assert not prefix.exists() and not processes_mentioning(str(prefix))


def test_worker_progress_lines_move_the_job_and_other_lines_are_log():
    from jupyter_layenv.create.conda import PROGRESS, needed_of, progress_of

    def line(**event: object) -> str:
        return PROGRESS + json.dumps(event) + "\n"

    assert progress_of(line(step="solve", done=0, total=1)) == ("solve", 0.02, "solve 0/1\n")
    step, fraction, text = progress_of(line(step="link", done=3, total=10, package="numpy", fraction=0.5))
    assert (step, round(fraction, 3), text) == ("link", 0.5, "link 3/10 numpy\n")
    assert progress_of(line(step="download", done=10, total=10, fraction=7))[1] == 0.9  # clamped: never past 0.9
    assert progress_of("solved in 0.02 s: 30 packages\n") is None
    assert progress_of(PROGRESS + "{not json\n") is None
    needed = "the 3 Conda packages solved needed at least 1.0 MiB (compressed)"
    assert needed_of(line(step="solve", done=1, total=1, needed=needed)) == needed
    assert needed_of(line(step="solve", done=1, total=1)) is None and needed_of(PROGRESS + "[1]\n") is None


async def test_a_conda_base_in_a_group_root_is_the_groups(jp_fetch, group_root: Path, jp_home_dir: Path):
    code, job = await create(jp_fetch, {"kind": "conda", "name": "shared", "packages": ["python=3.11"],
                                        "root": "group:physics"})  # fmt: skip
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
    path = group_root / "shared"
    assert job["environment"]["path"] == str(path) and job["environment"]["scope"] == "group"
    for directory in (path, path / "conda-meta", path / "lib"):
        mode = directory.stat().st_mode
        assert mode & 0o2070 == 0o2070, f"{directory} is not setgid and group-writable: {oct(mode)}"
    record = next((path / "conda-meta").glob("python-*.json"))
    assert record.stat().st_mode & 0o060 == 0o060  # rattler writes its records 0600: members could not read them
    assert not (jp_home_dir / ".conda" / "envs").exists()


@pytest.mark.parametrize("policy", [{"allow_conda_create": False}])
async def test_the_administrator_may_keep_bases_to_himself(jp_fetch, jp_home_dir: Path):
    code, policy = await fetch_json(jp_fetch, "policy")
    assert policy["conda"]["can_create"] is False and "allow_conda_create" in policy["conda"]["refused"]
    assert policy["can_create"] is True  # layers may still be built
    code, body = await create(jp_fetch, {"kind": "conda", "name": "mine", "packages": ["python=3.11"]})
    assert code == 403 and "LayenvPolicy.allow_conda_create" in body["message"]
    assert not (jp_home_dir / ".conda").exists()


@pytest.mark.parametrize("policy", [{"max_envs_per_user": 1}])
async def test_conda_bases_count_against_the_quota(jp_fetch, jp_home_dir: Path):
    code, job = await create(jp_fetch, {"kind": "conda", "name": "one", "packages": ["python=3.11"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
    code, body = await create(jp_fetch, {"kind": "conda", "name": "two", "packages": ["python=3.11"]})
    assert code == 403 and "max_envs_per_user" in body["message"] and "you have 1 environments" in body["message"]
    _, policy = await fetch_json(jp_fetch, "policy")
    assert policy["envs_owned"] == 1 and policy["conda"]["can_create"] is False
    assert "max_envs_per_user" in policy["conda"]["refused"]


@pytest.mark.parametrize("policy", [{"create_in": ["group"]}])
async def test_only_group_roots_allowed_a_conda_base_goes_there(jp_fetch, jp_home_dir: Path, group_root: Path):
    _, policy = await fetch_json(jp_fetch, "policy")
    assert policy["conda"]["can_create"] is True  # in the group root
    code, body = await create(jp_fetch, {"kind": "conda", "name": "mine", "packages": ["python=3.11"]})
    assert code == 403 and "create_in" in body["message"] and not (jp_home_dir / ".conda").exists()


@pytest.mark.parametrize("stall_downloads", [True])
async def test_a_crashed_rattler_worker_is_run_once_more(jp_fetch, jp_home_dir: Path, channel_release):
    """py-rattler is native code: a crash (seen once here: SIGSEGV mid-link under load) gets one more run, which
    continues where the first stopped. The crash is a real SIGSEGV sent to the worker while it downloads."""
    code, job = await create(jp_fetch, {"kind": "conda", "name": "crashy", "packages": ["python=3.11"]})
    assert code == 202, job
    path = jp_home_dir / ".conda" / "envs" / "crashy"
    job = await wait_for_step(jp_fetch, job["id"], "download")
    workers = [
        pid for pid in processes_mentioning(str(path)) if "guard" not in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    assert len(workers) == 1, workers
    channel_release.set()
    os.kill(workers[0], signal.SIGSEGV)
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
    log = (await jp_fetch("layenv", "jobs", job["id"], "log")).body.decode()
    assert f"py-rattler crashed (exit {128 + signal.SIGSEGV}); running it once more" in log
    assert (path / "conda-meta" / "history").read_text().count("==> ") == 1


def test_only_a_crash_is_retried():
    from jupyter_layenv.create.conda import crashed

    assert crashed(139) and crashed(-11) and crashed(134)
    assert not crashed(0) and not crashed(1) and not crashed(137) and not crashed(-9)  # SIGKILL: a cancel, or a kill


BASE_FIRST_YML = """name: fromfile
channels:
  - https://never.example.org/not-a-channel
dependencies:
  - python=3.11
  - conda-forge::layenv-conda-marker=1.0
  - pip
  - pip:
    - iniconfig
"""


async def test_an_environment_yml_may_build_its_base_first(jp_fetch, jp_serverapp, jp_home_dir: Path,
                                                           conda_channel: Path):  # fmt: skip
    """No base fits the file: 422; with build_base, a Conda job builds one from the configured channels (never the
    file's), then queues the layer on it; the layer's kernel imports the base's package and its own."""
    code, refused = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML})
    assert code == 422, refused
    code, bad = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": "yes"})
    assert code == 400 and "build_base" in bad["message"], bad
    code, job = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": True})
    assert code == 202, job
    assert job["then"] == {"name": "fromfile", "job": None, "error": None}, job
    base_job = await follow(jp_fetch, job["id"], timeout=240)
    assert base_job["state"] == "succeeded", await _log(jp_fetch, base_job)
    base_path = jp_home_dir / ".conda" / "envs" / "fromfile-base"
    assert base_job["environment"]["path"] == str(base_path) and base_job["environment"]["kind"] == "conda-env"
    records = [json.loads(p.read_text()) for p in (base_path / "conda-meta").glob("*.json")]
    assert {r["name"] for r in records} >= {"python", "layenv-conda-marker", "ipykernel"}
    assert all(r["channel"].startswith(channel_url(conda_channel)) for r in records), records[0]["channel"]
    assert base_job["then"]["job"] and base_job["then"]["error"] is None, base_job["then"]

    layer_job = await follow(jp_fetch, base_job["then"]["job"])
    assert layer_job["state"] == "succeeded", await _log(jp_fetch, layer_job)
    layer = layer_job["environment"]
    assert layer["base"] == str(base_path) and layer["name"] == "fromfile"
    provenance = json.loads((Path(layer["path"]) / "layenv.json").read_text())["environment_yml"]
    assert provenance["channels"] == ["https://never.example.org/not-a-channel"]  # recorded, never contacted
    probe = PROBE.replace("import json,", "import iniconfig, json,").replace(
        '"prefix"', '"ini": iniconfig.__version__, "prefix"'
    )
    out = json.loads(await run_in_kernel(jp_serverapp, layer["kernels"][0]["name"], probe))
    assert out["marker"] == "conda 1.0" and out["ini"] == INICONFIG_VERSION and out["prefix"] == layer["path"]

    # a base that fits now exists (the file's conda-forge:: is checked against where a record came from: dropped
    # here): build_base builds nothing more, the layer goes on it at once
    unpinned = BASE_FIRST_YML.replace("conda-forge::", "")
    code, again = await create(jp_fetch, {"environment_yml": unpinned, "name": "again", "build_base": True})
    assert code == 202 and again["base"] == str(base_path) and "then" not in again, again
    assert (await follow(jp_fetch, again["id"]))["state"] == "succeeded"


def test_cli_create_file_build_base(tmp_path: Path, conda_channel: Path, wheelhouse: Path):
    home, pkgs, url = tmp_path / "cli-home", tmp_path / "pkgs", channel_url(conda_channel)
    home.mkdir()
    yml = tmp_path / "environment.yml"
    yml.write_text(BASE_FIRST_YML)
    hermetic = [f"--LayenvService.find_links=['{wheelhouse}']", "--LayenvService.offline=True"]
    proc = _cli("create", "--file", str(yml), *hermetic, home=home, channel=url, pkgs=pkgs)
    assert proc.returncode != 0 and "no Conda environment here" in proc.stderr, proc.stderr
    proc = _cli("create", "--file", str(yml), "--build-base", *hermetic, home=home, channel=url, pkgs=pkgs)
    assert proc.returncode == 0, proc.stderr
    base, layer = home / ".conda" / "envs" / "fromfile-base", home / ".virtualenvs" / "fromfile"
    assert f"created the base {base}; now the layer fromfile on it" in proc.stderr and f"created {layer}" in proc.stderr
    assert "link 1/" in proc.stdout  # both jobs' logs
    probe = f"import iniconfig, {MARKER_MODULE} as m; print(m.WHERE, iniconfig.__version__)"
    out = subprocess.run([layer / "bin" / "python", "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["conda", "1.0", INICONFIG_VERSION], out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")
async def test_a_full_disk_says_how_much_the_solved_packages_needed(jp_fetch, jp_home_dir: Path):
    """The env's file system fills up while py-rattler links: the error names it and what the solve needed."""
    envs = jp_home_dir / ".conda" / "envs"
    with tmpfs(envs, "size=2m"):
        code, job = await create(jp_fetch, {"kind": "conda", "name": "full", "packages": ["python=3.11"]})
        assert code == 202, job
        job = await follow(jp_fetch, job["id"], timeout=240)
        assert job["state"] == "failed", job
        message = job["error"]
        assert "no space left" in message and str(envs) in message, await _log(jp_fetch, job)
        assert re.search(r"the \d+ Conda packages solved needed at least \d+\.\d MiB \(compressed\)", message), message
        assert sorted(os.listdir(envs)) in ([], [".layenv-locks"])


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")
async def test_a_read_only_layer_root_keeps_no_conda_base_from_its_own_envs_dir(jp_fetch, jp_home_dir: Path):
    """A Conda base goes to the Conda envs dir (``~/.conda/envs``), not to the layers' root (``~/.virtualenvs``):
    with the layers' root read-only, GET policy offered a Conda create and the POST refused it, naming that root."""
    layers = jp_home_dir / ".virtualenvs"
    layers.mkdir()
    with read_only(layers):
        _, policy = await fetch_json(jp_fetch, "policy")
        assert policy["conda"]["can_create"] is True, policy["conda"]
        code, job = await create(jp_fetch, {"kind": "conda", "name": "fromro", "packages": ["python=3.11"]})
        assert code == 202, job
        job = await follow(jp_fetch, job["id"], timeout=240)
        assert job["state"] == "succeeded", await _log(jp_fetch, job)
        assert job["environment"]["path"] == str(jp_home_dir / ".conda" / "envs" / "fromro")
        code, refused = await create(jp_fetch, {"name": "layer", "base": job["environment"]["id"]})
        assert code == 403 and "read-only file system" in refused["message"], refused  # a layer still cannot


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root (CI runs as root)")
async def test_a_read_only_group_root_refuses_a_conda_base(jp_fetch, jp_home_dir: Path, group_root: Path):
    """A group's Conda env goes into the group root itself: read-only, the create is refused (where the user's own
    root, read-only, is not: its Conda envs go to the Conda envs dir), and nothing is made anywhere."""
    with read_only(group_root):
        code, body = await create(jp_fetch, {"kind": "conda", "name": "ro", "packages": ["python=3.11"],
                                             "root": "group:physics"})  # fmt: skip
        assert code == 403 and body["reason"] == "read-only root", body
        assert "read-only file system" in body["message"] and str(group_root) in body["message"], body
    assert os.listdir(group_root) == [] and not (jp_home_dir / ".conda").exists()


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"environment_yml": BASE_FIRST_YML.replace("    - iniconfig", "    - --index-url=http://evil")}, 400,
         "installer option"),
        ({"display_name": "\x00"}, 400, "display_name"),
        ({"environment_yml": "name: onlypip\ndependencies:\n  - pip:\n    - iniconfig\n"}, 400, "only pip"),
        ({"environment_yml": BASE_FIRST_YML.replace("python=3.11", "python=3.11[subdir=win-64]")}, 400,
         "not a Conda match spec"),
    ],
)  # fmt: skip
async def test_build_base_checks_both_creates_before_queueing_any(jp_fetch, jp_home_dir: Path, change, status,
                                                                   message):  # fmt: skip
    code, body = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": True, **change})
    assert code == status and message in body["message"], body
    _, jobs = await fetch_json(jp_fetch, "jobs")
    assert jobs["jobs"] == [] and not (jp_home_dir / ".conda").exists()


@pytest.mark.parametrize("policy", [{"allow_conda_create": False}])
async def test_build_base_needs_the_right_to_create_bases(jp_fetch, jp_home_dir: Path):
    code, body = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": True})
    assert code == 403 and "allow_conda_create" in body["message"], body


SIZE_LIMIT = 1000  # bytes: less than any Conda env's own conda-meta


@pytest.mark.parametrize("policy", [{"max_bytes_per_user": SIZE_LIMIT}])
async def test_conda_envs_count_against_the_size_quota_and_a_conda_create_over_it_is_refused(
    jp_fetch, jp_home_dir: Path, audit
):
    """The user's Conda envs (in its Conda envs dir) count in bytes_owned; over the limit a Conda create and a
    build_base create are refused with 403, writing nothing and leaving the name free; GET policy greys them out."""
    code, job = await create(jp_fetch, {"kind": "conda", "name": "one", "packages": ["python=3.11"]})
    assert code == 202, job
    job = await follow(jp_fetch, job["id"], timeout=240)
    assert job["state"] == "succeeded", await _log(jp_fetch, job)
    envs = jp_home_dir / ".conda" / "envs"
    used = sizing.measure(str(envs / "one")).size_bytes
    assert used > SIZE_LIMIT

    for _ in range(100):  # GET policy counts the sizes measured so far (it never waits for a walk)
        _, policy = await fetch_json(jp_fetch, "policy")
        if policy["bytes_owned"] == used:
            break
        await asyncio.sleep(0.1)
    assert (policy["bytes_owned"], policy["can_create"], policy["conda"]["can_create"]) == (used, False, False)
    assert policy["create_refused"].startswith(f"your environments use {shown(used)}"), policy
    assert policy["conda"]["refused"] == policy["create_refused"]

    _, before = await fetch_json(jp_fetch, "jobs")
    for body in (
        {"kind": "conda", "name": "two", "packages": ["python=3.11"]},
        {"environment_yml": BASE_FIRST_YML, "name": "two", "build_base": True},
    ):
        code, reply = await create(jp_fetch, body)
        assert (code, reply["reason"]) == (403, "max_bytes_per_user"), reply
        assert f"your environments use {shown(used)} (at most {SIZE_LIMIT} bytes)" in reply["message"]
        assert (audit[-1]["action"], audit[-1]["outcome"], audit[-1]["detail"]) == (
            "create",
            "refused",
            reply["message"],
        )
    assert sorted(os.listdir(envs)) in (["one"], [".layenv-locks", "one"])
    assert not (jp_home_dir / ".virtualenvs" / "two").exists()
    assert (await fetch_json(jp_fetch, "jobs"))[1] == before

    assert (await jp_fetch("layenv", "environments", job["environment"]["id"], method="DELETE")).code == 204
    _, policy = await fetch_json(jp_fetch, "policy")
    assert policy["bytes_owned"] == 0 and policy["conda"]["can_create"] is True
    code, again = await create(jp_fetch, {"kind": "conda", "name": "two", "packages": ["python=3.11"]})
    assert code == 202, again  # under the limit again, and the name is free
    await fetch_json(jp_fetch, "jobs", again["id"], method="DELETE")
    await follow(jp_fetch, again["id"])


def test_cli_conda_create_over_the_size_quota_is_refused_in_cli_words(tmp_path: Path, conda_channel: Path):
    """A Conda env the user made with conda (in ~/.conda/envs) counts: `create --conda` is refused, exit 4."""
    home, pkgs, url = tmp_path / "cli-home", tmp_path / "pkgs", channel_url(conda_channel)
    mine = make_conda_prefix(home / ".conda" / "envs" / "mine")
    used = sizing.measure(str(mine)).size_bytes
    assert used > SIZE_LIMIT
    proc = _cli(
        "create",
        "more",
        "--conda",
        "python=3.11",
        f"--LayenvPolicy.max_bytes_per_user={SIZE_LIMIT}",
        home=home,
        channel=url,
        pkgs=pkgs,
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith(f"error: your environments use {shown(used)} (at most {SIZE_LIMIT} bytes)")
    assert "`jupyter layenv clean`" in proc.stderr and "LayenvPolicy.max_bytes_per_user" in proc.stderr
    assert not re.search(r"\b(GET|POST|DELETE) |\b403\b|'\w+' must", proc.stderr), proc.stderr
    assert sorted(os.listdir(home / ".conda" / "envs")) in (["mine"], [".layenv-locks", "mine"])
    assert not pkgs.exists()  # nothing solved, nothing downloaded


@pytest.mark.parametrize("stall_downloads", [True])
async def test_a_layer_refused_once_its_base_is_built_says_why_and_the_base_stays(
    jp_fetch, jp_serverapp, jp_home_dir: Path, channel_release, audit
):
    """build_base: while the base downloads, someone makes a venv under the layer's name. Once the base is built, its
    layer cannot be queued: the base job succeeded and says why (``then.error``), the refusal is audited, and the
    base stays, a kernel that runs; with the name free again, the same file builds its layer on that base."""
    code, job = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": True})
    assert code == 202, job
    await wait_for_step(jp_fetch, job["id"], "download")
    taken = make_venv(jp_home_dir / ".virtualenvs" / "fromfile")
    channel_release.set()
    base_job = await follow(jp_fetch, job["id"], timeout=240)
    assert base_job["state"] == "succeeded", await _log(jp_fetch, base_job)
    error = base_job["then"]["error"]
    assert base_job["then"]["job"] is None and base_job["then"]["name"] == "fromfile", base_job["then"]
    base_path = jp_home_dir / ".conda" / "envs" / "fromfile-base"
    kept = f"the base {base_path} was built and is kept, but its layer fromfile was not queued: "
    assert error.startswith(kept), error
    assert f"{taken} exists already; pick another name or delete it first" in error, error
    assert "POST the environment.yml again" in error, error  # what to do next, in REST words
    refusals = [e for e in audit if (e["action"], e["env"], e["outcome"]) == ("create", "fromfile", "refused")]
    assert [e["detail"] for e in refusals] == [error]
    _, jobs = await fetch_json(jp_fetch, "jobs")
    assert [j["id"] for j in jobs["jobs"]] == [job["id"]]  # no layer job

    base = base_job["environment"]
    assert base["path"] == str(base_path) and base["kernels"] and not (base_path / ".layenv-building").exists()
    out = json.loads(await run_in_kernel(jp_serverapp, base["kernels"][0]["name"], PROBE))
    assert out["prefix"] == str(base_path) and out["marker"] == "conda 1.0"

    listed = (await fetch_json(jp_fetch, "environments"))[1]["environments"]
    taken_id = next(env["id"] for env in listed if env["path"] == str(taken))
    code, _ = await fetch_json(jp_fetch, "environments", taken_id, method="DELETE")
    assert code == 204 and not taken.exists()
    code, again = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML.replace("conda-forge::", "")})
    assert code == 202 and again["base"] == str(base_path), again
    assert (await follow(jp_fetch, again["id"]))["state"] == "succeeded"


@pytest.mark.parametrize("policy", [{"max_envs_per_user": 2}, {"max_jobs": 1}])
async def test_build_base_within_the_quotas_gets_its_layer(jp_fetch, jp_home_dir: Path, policy):
    """A base and its layer fit two envs, one job at a time: the base job, finishing, is not counted twice (as its
    listed env and as a running create) nor as a job still running, when its layer is queued."""
    code, job = await create(jp_fetch, {"environment_yml": BASE_FIRST_YML, "build_base": True})
    assert code == 202, job
    base_job = await follow(jp_fetch, job["id"], timeout=240)
    assert base_job["state"] == "succeeded", await _log(jp_fetch, base_job)
    assert base_job["then"]["error"] is None and base_job["then"]["job"], base_job["then"]
    layer_job = await follow(jp_fetch, base_job["then"]["job"])
    assert layer_job["state"] == "succeeded", await _log(jp_fetch, layer_job)
    _, report = await fetch_json(jp_fetch, "policy")
    assert (report["envs_owned"], report["active_jobs"]) == (2, 0)
    assert report["can_create"] is ("max_envs_per_user" not in policy), report


def test_cli_build_base_whose_layer_is_refused_keeps_the_base_and_says_so_in_cli_words(
    tmp_path: Path, conda_channel: Path, wheelhouse: Path
):
    """One env allowed: the base is built (no env yet), its layer would be the second: refused once the base is
    there. The CLI fails (exit 1) saying why and what to run next, in its own words; the base stays and runs."""
    home, pkgs, url = tmp_path / "cli-home", tmp_path / "pkgs", channel_url(conda_channel)
    home.mkdir()
    yml = tmp_path / "environment.yml"
    yml.write_text(BASE_FIRST_YML)
    options = [
        f"--LayenvService.find_links=['{wheelhouse}']",
        "--LayenvService.offline=True",
        "--LayenvPolicy.max_envs_per_user=1",
    ]
    proc = _cli("create", "--file", str(yml), "--build-base", *options, home=home, channel=url, pkgs=pkgs)
    assert proc.returncode == 1, proc.stderr
    base = home / ".conda" / "envs" / "fromfile-base"
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: the base {base} was built and is kept, but its layer fromfile was not queued: you have 1 "
        "environments (at most 1); delete one first (rule LayenvPolicy.max_envs_per_user; ask your administrator to "
        "change it); then run `jupyter layenv create --file` again without --build-base: its layer goes on that base"
    ), proc.stderr
    assert not (home / ".virtualenvs" / "fromfile").exists()
    out = subprocess.run(
        [base / "bin" / "python", "-c", f"import ipykernel, {MARKER_MODULE} as m; print(m.WHERE)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "conda 1.0", out.stderr
