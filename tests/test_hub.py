"""A real JupyterHub: users' single-user servers load jupyter_layenv, and JupyterHub scopes decide who may create.

JupyterHub from PyPI, configurable-http-proxy from npm, real Unix users alice and bob in one group
(tests/unixusers.py), LocalProcessSpawner running each server under its user's uid and groups, and
``LayenvHubAuthorizer`` with the scopes of docs/shared-servers.md: everyone has ``custom:jupyter_server:read:layenv``;
only alice (JupyterHub group ``env-creators``) has ``custom:jupyter_server:write:layenv``. Alice creates an env in
the group root; bob sees it as a kernel and runs it; bob's create is refused with 403 and nothing is written. Both
through API tokens and through a browser session (the Hub's login, OAuth into the server: what the panel uses).

Needs root, jupyterhub and configurable-http-proxy: skipped without them, unless ``LAYENV_HUB_REQUIRED=1`` (as in
``.ci/run``), where a missing piece fails the tests.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubutil import (
    Browser,
    Hub,
    Reply,
    execute,
    http,
    hub_config,
    install_jupyterhub,
    missing_requirements,
    proxy_command,
)
from jupyter_process import free_port
from unixusers import (  # noqa: F401  (fixtures)
    SharedArea,
    UnixUser,
    Users,
    shared_area_fixture,
    unix_users_fixture,
)

REQUIRED = os.environ.get("LAYENV_HUB_REQUIRED") == "1"
READ = "custom:jupyter_server:read:layenv"
WRITE = "custom:jupyter_server:write:layenv"
GROUP_ROOT = "group:physics"
AUTHORIZER = "jupyter_layenv.hub.LayenvHubAuthorizer"

# What docs/shared-servers.md tells an administrator to write (section 4).
CUSTOM_SCOPES = {
    READ: {"description": "List Python environments and their kernels (jupyter_layenv)."},
    WRITE: {"description": "Create and delete Python environments (jupyter_layenv).", "subscopes": [READ]},
}
ROLES = [
    {"name": "user", "scopes": ["self", f"{READ}!user"]},
    {"name": "layenv-creators", "scopes": [f"{WRITE}!user"], "groups": ["env-creators"]},
]
OAUTH_SCOPES = [f"{READ}!server", f"{WRITE}!server"]


def peek_at(owner: UnixUser, helper: UnixUser) -> dict:
    """JupyterHub lets ``helper`` into ``owner``'s server (a course helper's role): its layenv scopes stay its own."""
    return {"name": "layenv-test-peek", "scopes": [f"access:servers!user={owner.name}"], "users": [helper.name]}


@dataclass
class HubSetup:
    hub: Hub
    area: SharedArea
    alice: UnixUser  # may create
    bob: UnixUser  # may only list
    gid: int  # the group root's group
    tokens: dict[str, str]
    pids: dict[str, int]

    def server(self, user: UnixUser) -> str:
        return f"{self.hub.url}/user/{user.name}/"

    def layenv(self, user: UnixUser, method: str, path: str, body=None, token_of: UnixUser | None = None) -> Reply:
        token = self.tokens[(token_of or user).name]
        return http(method, f"{self.server(user)}layenv/{path}", token, body)


def server_config_py(area: SharedArea, user: UnixUser) -> str:
    """The single-user servers' jupyter_server_config.py: the shared roots (docs/shared-servers.md)."""
    settings = area.server_config(user)
    settings["LayenvService"]["user_root"] = "~/.virtualenvs"  # one file for every user
    lines = ["c = get_config()  # noqa"]
    lines += [f"c.{section}.{key} = {value!r}" for section, values in settings.items() for key, value in values.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hub_setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSetup]:
    missing = missing_requirements()
    if missing:
        if REQUIRED:
            pytest.fail(f"JupyterHub tests required (LAYENV_HUB_REQUIRED=1) but {missing}")
        pytest.skip(missing)
    users: Users = request.getfixturevalue("unix_users")
    area: SharedArea = request.getfixturevalue("shared_area")
    alice, bob = users.alice, users.bob
    for user in (alice, bob):
        page = user.home / "layenv-hub-test.txt"  # a page to open in a browser session (OAuth into the server)
        page.write_text("hello\n")
        user.chown(page)
    install_jupyterhub(area.server_prefix)
    for user in (alice, bob):
        probe = user.run([str(area.python), "-c", "import jupyterhub.singleuser, jupyter_layenv.hub"])
        assert probe.returncode == 0, f"{user.name} cannot run the single-user server {area.python}:\n{probe.stderr}"
    work = tmp_path_factory.mktemp("hub")  # the Hub's database, cookie secret, log: root's only
    config_dir = area.root / "etc-jupyter-hub"  # the directory in JUPYTER_CONFIG_PATH (docs/shared-servers.md §3)
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(server_config_py(area, alice))
    # bob tries to lift the restriction with his own config: the authorizer on the command line wins
    own = bob.home / ".jupyter" / "jupyter_server_config.py"
    own.parent.mkdir(exist_ok=True)
    own.write_text('c.ServerApp.authorizer_class = "jupyter_server.auth.authorizer.AllowAllAuthorizer"\n')
    for path in (own.parent, own):
        bob.chown(path)

    hub = Hub(work, port=free_port())
    hub.config = hub_config(
        port=hub.port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        proxy=proxy_command() or "configurable-http-proxy",
        singleuser=[str(area.python), "-m", "jupyterhub.singleuser"],
        args=[f"--ServerApp.authorizer_class={AUTHORIZER}"],
        environment={"JUPYTER_CONFIG_PATH": str(config_dir)},
        users=[alice.name, bob.name],
        custom_scopes=CUSTOM_SCOPES,
        groups={"env-creators": [alice.name]},  # JupyterHub's groups, not Unix ones
        roles=[*ROLES, peek_at(bob, alice)],
        oauth_client_allowed_scopes=OAUTH_SCOPES,
    )
    before = {entry.name for entry in area.group_root.iterdir()}
    try:
        hub.start()
        hub.wait_ready()
        servers = hub.start_servers([alice.name, bob.name])
        tokens = {user.name: hub.user_token(user.name) for user in (alice, bob)}
        pids = {name: server["state"]["pid"] for name, server in servers.items()}
        yield HubSetup(hub, area, alice, bob, users.gid, tokens, pids)
    finally:
        hub.stop()
        # the shared area and the accounts serve other test modules: leave them as found
        for entry in area.group_root.iterdir():
            if entry.name in before:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for path in (own, *(user.home / "layenv-hub-test.txt" for user in (alice, bob))):
            path.unlink(missing_ok=True)


def _status_ids(pid: int) -> tuple[int, set[int]]:
    """The real uid and the supplementary groups of a live process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Uid"].split()[0]), {int(g) for g in fields["Groups"].split()}


def _env_by_path(listing: dict, path: Path) -> dict:
    found = [env for env in listing["environments"] if Path(env["path"]) == path]
    assert found, f"{path} not listed: {[env['path'] for env in listing['environments']]} skipped {listing['skipped']}"
    return found[0]


def _base_id(setup: HubSetup, user: UnixUser) -> str:
    listing = setup.layenv(user, "GET", "environments")
    assert listing.status == 200, listing
    return _env_by_path(listing.body, setup.area.base)["id"]


def _follow(setup: HubSetup, user: UnixUser, location: str, timeout: float = 120) -> dict:
    """Poll the job at ``location`` (the 202's Location header) until it ends, as the panel does."""
    job_path = location.split("/layenv/", 1)[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = setup.layenv(user, "GET", job_path).body
        if job["state"] not in ("queued", "running"):
            if job["state"] != "succeeded":
                job["log"] = setup.layenv(user, "GET", f"{job_path}/log").body
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_path} did not finish: {job}")


def test_servers_run_as_their_users_with_the_extension(hub_setup: HubSetup):
    for user in (hub_setup.alice, hub_setup.bob):
        uid, groups = _status_ids(hub_setup.pids[user.name])
        assert uid == user.uid
        assert hub_setup.gid in groups
        reply = hub_setup.layenv(user, "GET", "environments")
        assert reply.status == 200, f"{user.name}: {reply.status} {reply.body}\n{hub_setup.hub.log_tail()}"
        base = _env_by_path(reply.body, hub_setup.area.base)
        assert base["kernels"] and base["scope"] == "system", base
        # the rest of the server is decided by JupyterHub's authorizer, unchanged
        assert http("GET", f"{hub_setup.server(user)}api/kernelspecs", hub_setup.tokens[user.name]).status == 200


def test_policy_tells_each_user_whether_they_may_create(hub_setup: HubSetup):
    alice = hub_setup.layenv(hub_setup.alice, "GET", "policy")
    assert alice.status == 200, alice
    assert alice.body["can_create"] and alice.body["can_delete"], alice.body
    group = [root for root in alice.body["roots"] if root["id"] == GROUP_ROOT]
    assert group and group[0]["can_create"], alice.body["roots"]
    bob = hub_setup.layenv(hub_setup.bob, "GET", "policy")
    assert bob.status == 200, bob
    assert not bob.body["can_create"] and not bob.body["can_delete"], bob.body
    assert WRITE in bob.body["create_refused"]


def test_a_user_without_the_write_scope_gets_403_and_can_still_list(hub_setup: HubSetup):
    """Even though bob's own ~/.jupyter config names another authorizer: the Hub's command line wins."""
    bob = hub_setup.bob
    base_id = _base_id(hub_setup, bob)
    for root in ("user", GROUP_ROOT):
        reply = hub_setup.layenv(bob, "POST", "environments", {"name": "hub-denied", "base": base_id, "root": root})
        assert reply.status == 403, reply
        assert WRITE in reply.body["message"], reply.body
    assert not [job for job in hub_setup.layenv(bob, "GET", "jobs").body["jobs"] if job["name"] == "hub-denied"]
    assert not (hub_setup.area.group_root / "hub-denied").exists()
    assert not (bob.home / ".virtualenvs" / "hub-denied").exists()


def test_a_token_reaches_only_its_own_users_server(hub_setup: HubSetup):
    """alice may enter bob's server (``peek_at``), so JupyterHub lets her token through, but her layenv scopes are
    filtered to her own server (``!user``): jupyter_layenv, not JupyterHub, refuses her bob's environments."""
    alice, bob = hub_setup.alice, hub_setup.bob
    assert http("GET", f"{hub_setup.server(bob)}api/kernelspecs", hub_setup.tokens[alice.name]).status == 200
    for method, path, body in (("GET", "environments", None), ("POST", "environments", {"name": "x", "base": "y"})):
        reply = hub_setup.layenv(bob, method, path, body, token_of=alice)
        assert reply.status == 403, reply
        assert (READ if method == "GET" else WRITE) in reply.body["message"], reply.body


def test_alice_creates_in_the_group_root_and_bob_runs_it_as_a_kernel(hub_setup: HubSetup):
    alice, bob = hub_setup.alice, hub_setup.bob
    body = {"name": "hub-shared", "base": _base_id(hub_setup, alice), "root": GROUP_ROOT, "packages": ["iniconfig"]}
    reply = hub_setup.layenv(alice, "POST", "environments", body)
    assert reply.status == 202, reply
    job = _follow(hub_setup, alice, reply.headers["location"])
    assert job["state"] == "succeeded", job
    env_path = hub_setup.area.group_root / "hub-shared"
    st = env_path.stat()
    assert (st.st_uid, st.st_gid) == (alice.uid, hub_setup.gid)

    listed = _env_by_path(hub_setup.layenv(bob, "GET", "environments").body, env_path)
    assert (listed["scope"], listed["creator"]) == ("group", alice.name), listed
    specs = http("GET", f"{hub_setup.server(bob)}api/kernelspecs", hub_setup.tokens[bob.name]).body["kernelspecs"]
    names = [n for n, s in specs.items() if Path(s["spec"]["metadata"]["layenv"]["path"]) == env_path]
    assert names, f"bob does not see {env_path} as a kernel: {sorted(specs)}"
    code = "import os, sys, IPython, iniconfig; print(os.getuid(), sys.prefix, IPython.__file__, iniconfig.__file__)"
    out = execute(hub_setup.server(bob), hub_setup.tokens[bob.name], names[0], code)
    uid, prefix, ipython, iniconfig = out.split()
    assert int(uid) == bob.uid
    assert Path(prefix) == env_path
    assert Path(ipython).is_relative_to(hub_setup.area.base)  # inherited from the base (system site packages)
    assert Path(iniconfig).is_relative_to(env_path)  # the layer's own package


def test_browser_session_scopes_come_from_oauth_client_allowed_scopes(hub_setup: HubSetup):
    """What the panel does: log in to the Hub, open the server (OAuth), call the API with the server's cookie."""
    for user, create_status in ((hub_setup.alice, 202), (hub_setup.bob, 403)):
        browser = Browser(hub_setup.hub.url)
        browser.login(user.name)
        page = browser.open(f"/user/{user.name}/files/layenv-hub-test.txt")
        assert page.status == 200 and page.body == "hello\n", page
        prefix = f"/user/{user.name}/layenv"
        listing = browser.call("GET", f"{prefix}/environments")
        assert listing.status == 200, listing
        base_id = _env_by_path(listing.body, hub_setup.area.base)["id"]
        created = browser.call("POST", f"{prefix}/environments", {"name": "hub-web", "base": base_id})
        assert created.status == create_status, created
        if created.status == 202:  # and the same session may delete what it made
            job = _follow(hub_setup, user, created.headers["location"])
            assert job["state"] == "succeeded", job
            deleted = browser.call("DELETE", f"{prefix}/environments/{job['environment']['id']}")
            assert deleted.status == 204, deleted
            assert not Path(job["path"]).exists()


@pytest.mark.parametrize(
    ("have", "action", "allowed"),
    [
        (f"{WRITE}!user=alice", "write", True),
        (f"{WRITE}!server=alice/", "write", True),  # an OAuth token's filter
        (WRITE, "write", True),  # unfiltered: any server
        ("custom:jupyter_server:write:*!user=alice", "write", True),  # the read-only example's wildcard
        (f"{READ}!user=alice", "write", False),
        (f"{WRITE}!user=bob", "write", False),  # another user's server
        (f"{WRITE}!server=alice/other", "write", False),  # another of alice's servers
        (f"{WRITE}!group=physics", "write", False),  # not resolved by check_scopes: grant roles to groups instead
        (f"{READ}!user=alice", "read", True),
        (f"{WRITE}!user=alice", "read", False),  # write implies read only through custom_scopes' subscopes
    ],
)
@pytest.mark.filterwarnings("ignore:.*combinations of filters present:UserWarning")  # jupyterhub on !group
def test_which_scopes_let_a_request_through(have: str, action: str, allowed: bool):
    """The scopes LayenvHubAuthorizer asks of the token, against JupyterHub's own check_scopes."""
    if not REQUIRED:  # with LAYENV_HUB_REQUIRED=1 a missing jupyterhub fails the import below
        pytest.importorskip("jupyterhub")
    from jupyterhub.services.auth import check_scopes

    from jupyter_layenv.hub import required_scopes

    assert bool(check_scopes(required_scopes(action, "alice", ""), {have})) is allowed
