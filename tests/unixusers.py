"""Real Unix users and a shared area for the shared-server tests (root only; plain helpers + session fixtures).

What a test gets (import ``unix_users_fixture`` and ``shared_area_fixture`` into the test module):

- ``unix_users`` (session fixture) -> :class:`Users`: ``alice`` and ``bob`` in one group (``users.group``,
  gid ``users.gid``), ``carol`` outside it. Real accounts made with ``groupadd``/``useradd -m`` (homes 0700 under
  /home), named ``layenv-t-<who>-<session suffix>`` so two test sessions never share (or delete) each other's
  accounts; removed with their homes (``userdel -r``) at the end of the session.
- ``shared_area`` (session fixture) -> :class:`SharedArea`: a fresh ``/tmp/layenv-shared-<random>/`` (0755) that
  every user can read, holding what an administrator installs for all users: a Conda root ``opt/conda`` whose
  ``envs/py311`` has ipykernel (the base to layer on), a Jupyter server prefix ``server/`` (jupyter_server +
  jupyter_layenv, every user can run ``server/bin/jupyter``), a wheelhouse, and ``srv/layenv/physics``, a group
  root owned by ``users.group`` with mode 2770. Removed at the end of the session.
- :func:`start_server`: ``jupyter server`` running as one of the users (its uid, gid and groups, umask 022,
  HOME ``/home/<user>``), configured with :meth:`SharedArea.server_config`.

Why a server prefix of its own: the dev venv's interpreter lives wherever the test machine put it (here under
/root, mode 0700), out of other users' reach; like a JupyterHub install in /opt, ``server/`` is readable by all.
It is built by :func:`envtree.make_conda_prefix` (the same CPython, the dev venv's installed distributions hard
linked, jupyter_layenv copied from the checkout, so the code under test is the checkout's).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

PREFIX = "layenv-t-"
GROUP_ROOT_NAME = "physics"  # the directory srv/layenv/physics: the root's id is "group:physics"
UMASK = 0o022  # a user's usual umask: whatever is group-writable, the product made so itself

_TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "usermod")


def why_not_runnable() -> str | None:
    """The reason these tests cannot run here, or ``None``."""
    if not sys.platform.startswith("linux"):
        return "real Unix users are made with the Linux shadow tools (useradd); this is not Linux"
    if os.geteuid() != 0:
        return (
            "creating real Unix users and groups needs root (useradd/groupadd); run the tests as root to include them"
        )
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found: install the passwd package (shadow utils) to run these tests"
    return None


requires_root = pytest.mark.skipif(why_not_runnable() is not None, reason=str(why_not_runnable()))
"""Mark a module with ``pytestmark = requires_root``: skipped, with the reason, when users cannot be made."""


# ------------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class UnixUser:
    name: str
    uid: int
    gid: int  # primary group (the user's own group, USERGROUPS_ENAB)
    groups: tuple[int, ...]  # every gid the user is in, as a login gets them (getgrouplist)
    home: Path

    def popen_kwargs(self, umask: int = UMASK) -> dict[str, Any]:
        """``subprocess`` arguments that run a child as this user, with its groups (as a login would)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups), "umask": umask}

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: ours) with HOME, USER and LOGNAME of this user, and no XDG dirs of root's."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("XDG_")}
        env.update(HOME=str(self.home), USER=self.name, LOGNAME=self.name)
        return env

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as this user (in its HOME), capturing text output; never raises on a non-zero exit."""
        kwargs.setdefault("env", self.environ())
        kwargs.setdefault("cwd", self.home)
        return subprocess.run(list(argv), capture_output=True, text=True, check=False, **self.popen_kwargs(), **kwargs)

    def chown(self, path: Path) -> None:
        os.chown(path, self.uid, self.gid)


def _shadow_tool(argv: list[str], ok: Sequence[int] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run useradd & co, retrying while another process holds /etc/passwd's lock (exit 1 or 10)."""
    for _ in range(50):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode in ok:
            return proc
        if "lock" not in (proc.stderr + proc.stdout).lower():
            break
        time.sleep(0.1)
    raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")


def ensure_group(name: str) -> int:
    """The gid of group ``name``, made with ``groupadd`` if it does not exist yet."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        _shadow_tool(["groupadd", name])
        return grp.getgrnam(name).gr_gid


def ensure_user(name: str, groups: Sequence[str] = ()) -> UnixUser:
    """User ``name`` with a home under /home (0700) and membership of ``groups``; made or completed as needed."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--create-home", "--shell", "/bin/sh", "--key", "HOME_MODE=0700"]
        _shadow_tool([*argv, *(["--groups", ",".join(groups)] if groups else []), name])
    else:
        if groups:
            _shadow_tool(["usermod", "--append", "--groups", ",".join(groups), name])
    entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        raise RuntimeError(f"useradd made {name} but not its home {home}")
    gids = tuple(os.getgrouplist(name, entry.pw_gid))
    return UnixUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=gids, home=home)


def kill_processes_of(uid: int) -> list[int]:
    """SIGKILL every process running as ``uid`` (an account this session made), by pid; returns them."""
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}").st_uid == uid:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    return killed


def remove_user(name: str) -> None:
    """Delete the account and its home; its leftover processes (a killed server's installer) are killed first."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for _ in range(20):
        if not kill_processes_of(uid):
            break
        time.sleep(0.1)
    _shadow_tool(["userdel", "--remove", name], ok=(0, 12))  # 12: the home was gone already


def remove_group(name: str) -> None:
    with contextlib.suppress(KeyError):
        grp.getgrnam(name)
        _shadow_tool(["groupdel", name], ok=(0, 6))  # 6: no such group


@dataclass(frozen=True)
class Users:
    """Two members of one group and an outsider."""

    alice: UnixUser
    bob: UnixUser
    carol: UnixUser  # not in ``group``
    group: str
    gid: int

    @property
    def all(self) -> tuple[UnixUser, ...]:
        return (self.alice, self.bob, self.carol)


def make_users(suffix: str) -> Users:
    group = f"{PREFIX}physics-{suffix}"
    gid = ensure_group(group)
    alice = ensure_user(f"{PREFIX}alice-{suffix}", [group])
    bob = ensure_user(f"{PREFIX}bob-{suffix}", [group])
    carol = ensure_user(f"{PREFIX}carol-{suffix}")
    return Users(alice=alice, bob=bob, carol=carol, group=group, gid=gid)


def remove_users(users: Users) -> None:
    for user in users.all:
        remove_user(user.name)
    remove_group(users.group)


@pytest.fixture(scope="session", name="unix_users")
def unix_users_fixture() -> Iterator[Users]:
    """alice and bob (group members) and carol (outsider): real accounts for this session, removed after it."""
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    users = make_users(secrets.token_hex(3))
    try:
        yield users
    finally:
        remove_users(users)


# ---------------------------------------------------------------------------------------------- shared area


@dataclass(frozen=True)
class SharedArea:
    """What an administrator installs for every user, in a directory every user can read."""

    root: Path  # /tmp/layenv-shared-<random>, 0755
    conda_root: Path  # root/opt/conda: a Conda install root, the system root of the servers
    base: Path  # root/opt/conda/envs/py311: the base to layer on (ipykernel)
    server_prefix: Path  # root/server: python + jupyter_server + jupyter_layenv
    wheelhouse: Path  # root/wheelhouse: iniconfig (which the base does not have)
    group_roots_glob: str  # root/srv/layenv/*
    group_root: Path  # root/srv/layenv/physics: group users.group, mode 2770

    @property
    def python(self) -> Path:
        return self.server_prefix / "bin" / "python"

    @property
    def jupyter(self) -> Path:
        return self.server_prefix / "bin" / "jupyter"

    def server_config(self, user: UnixUser, **service: Any) -> dict[str, Any]:
        """``jupyter_server_config.json`` of ``user``'s server: the shared roots, the user root in its HOME,
        hermetic installs (the wheelhouse, no index). ``service`` overrides or adds LayenvService settings."""
        return {
            "LayenvKernelSpecManager": {
                "system_roots": [str(self.conda_root)],
                "group_roots": [self.group_roots_glob],
            },
            "LayenvService": {
                "user_root": str(user.home / ".virtualenvs"),
                "installer": "uv",
                "offline": True,
                "find_links": [str(self.wheelhouse)],
                **service,
            },
        }


def relocate_sysconfig(prefix: Path) -> None:
    """Point the copied interpreter's build-time paths (``_sysconfigdata``: LIBDIR, prefix…) at ``prefix``.

    Conda rewrites its placeholder prefix in these files when it installs Python; the envtree copy keeps the
    original's, which only the test's own user may read here (virtualenv stats LIBDIR's libpython and fails
    with EACCES). The file is hard linked: a new file replaces the link, the original is left alone.
    """
    from envtree import LIB_PYTHON

    original = str(Path(sys.base_prefix))
    stdlib = prefix / LIB_PYTHON
    for module in stdlib.glob("_sysconfigdata*.py"):
        text = module.read_text(encoding="utf-8")
        replaced = stdlib / f".{module.name}.tmp"
        replaced.write_text(text.replace(original, str(prefix)), encoding="utf-8")
        replaced.chmod(0o644)
        os.replace(replaced, module)
        for cached in (stdlib / "__pycache__").glob(f"{module.stem}.*.pyc"):
            cached.unlink()  # the linked pyc of the original source


def _console_script(prefix: Path, name: str) -> None:
    """``bin/<name>`` as pip writes it from the distribution's entry point, for the prefix's own python."""
    (entry,) = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == name]
    module, func = entry.value.split(":")
    script = prefix / "bin" / name
    script.write_text(
        f"#!{prefix / 'bin' / 'python'}\nimport sys\nfrom {module} import {func}\n"
        f"if __name__ == '__main__':\n    sys.exit({func}())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)


def _copy_checkout_package(prefix: Path) -> None:
    """jupyter_layenv itself as files of the install, not the editable ``.pth`` into the checkout: other users
    can then run it wherever the checkout is (a clone under /root, mode 0700, included). Same code, copied."""
    from envtree import site_packages

    import jupyter_layenv

    site = site_packages(prefix)
    for pth in site.glob("*jupyter_layenv*.pth"):
        pth.unlink()
    package = Path(jupyter_layenv.__file__).parent
    shutil.copytree(package, site / "jupyter_layenv", ignore=shutil.ignore_patterns("__pycache__"))


def build_server_prefix(dest: Path) -> Path:
    """A Jupyter server install every user can run: the dev venv's jupyter_layenv (and its closure) linked into
    a copy of the CPython, with its console scripts, ``uv`` and the server-extension config pip would install."""
    from envtree import link_or_copy, make_conda_prefix

    from jupyter_layenv.create.installers import find_uv

    make_conda_prefix(dest, packages=["jupyter_layenv", "jupyter_server", "virtualenv", "uv", "packaging"])
    _copy_checkout_package(dest)
    for name in ("jupyter", "jupyter-server", "jupyter-layenv"):
        _console_script(dest, name)
    uv = find_uv()  # the uv the product itself would run
    assert uv is not None, "uv is a dependency of jupyter_layenv"
    link_or_copy(uv, dest / "bin" / "uv")
    config_d = Path("etc", "jupyter", "jupyter_server_config.d")
    (dest / config_d).mkdir(parents=True)
    for source in (Path(sys.prefix) / config_d).glob("jupyter_layenv*.json"):
        shutil.copy2(source, dest / config_d / source.name)
    return dest


def make_shared_area(users: Users) -> SharedArea:
    """Build the shared area (a few seconds: hard links). Remove it with ``shutil.rmtree(area.root)``."""
    from envtree import make_conda_prefix
    from wheelhouse import write_wheel

    root = Path(tempfile.mkdtemp(prefix="layenv-shared-", dir="/tmp"))
    old_umask = os.umask(0o022)
    try:
        root.chmod(0o755)
        conda_root = make_conda_prefix(root / "opt" / "conda", conda_root=True)
        base = make_conda_prefix(conda_root / "envs" / "py311", ipykernel=True)
        server_prefix = build_server_prefix(root / "server")
        for prefix in (conda_root, base, server_prefix):
            relocate_sysconfig(prefix)
        wheelhouse = root / "wheelhouse"
        write_wheel(wheelhouse, "iniconfig", "2.0.0", {"iniconfig/__init__.py": '__version__ = "2.0.0"\n'})
        group_root = root / "srv" / "layenv" / GROUP_ROOT_NAME
        group_root.mkdir(parents=True)
        os.chown(group_root, 0, users.gid)
        group_root.chmod(0o2770)  # chmod after chown: chown clears the setgid bit
    finally:
        os.umask(old_umask)
    area = SharedArea(
        root=root,
        conda_root=conda_root,
        base=base,
        server_prefix=server_prefix,
        wheelhouse=wheelhouse,
        group_roots_glob=str(root / "srv" / "layenv" / "*"),
        group_root=group_root,
    )
    check_runnable(area, users.all)
    return area


def check_runnable(area: SharedArea, users: Sequence[UnixUser]) -> None:
    """Every user runs the server's python and the base's; a clear error (not a hung server) when not."""
    probes = [(area.python, "import jupyter_server, jupyter_layenv, uv"), (area.base / "bin" / "python", "1")]
    for user in users:
        for python, code in probes:
            proc = user.run([str(python), "-c", code])
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{user.name} cannot run {python} -c {code!r} ({proc.returncode}): {proc.stderr.strip()}\n"
                    f"Every directory on its path and every file it loads must be readable by other users "
                    f"(mode o+rx); /tmp must not be mounted noexec."
                )


@pytest.fixture(scope="session", name="shared_area")
def shared_area_fixture(unix_users: Users) -> Iterator[SharedArea]:
    """The shared area of :func:`make_shared_area`, removed after the session."""
    area = make_shared_area(unix_users)
    try:
        yield area
    finally:
        shutil.rmtree(area.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- the servers


def start_server(
    area: SharedArea,
    user: UnixUser,
    label: str,
    *,
    wait: bool = True,
    extra_env: dict[str, str] | None = None,
    **service: Any,
):
    """``jupyter server`` of the shared install running as ``user``, work dirs in ``~/jupyter-<label>``.

    Returns the :class:`jupyter_process.JupyterProcess` (ready unless ``wait=False``); stop it when done.
    ``service`` goes to :meth:`SharedArea.server_config`; ``extra_env`` is added to the server's environment.
    """
    from jupyter_process import JupyterProcess

    work = user.home / f"jupyter-{label}"
    server = JupyterProcess(
        work,
        user.home,
        jupyter=str(area.jupyter),
        config_files={"jupyter_server_config.json": area.server_config(user, **service)},
        drop_env=("PYTHONPATH", "VIRTUAL_ENV", "XDG_", "UV_", "PIP_", "CONDA", "JUPYTER"),
        cwd=user.home,
        user=user.name,
        extra_env=extra_env or {},
    )
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
    return server


def tree_modes(path: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """``(path, lstat)`` of ``path`` and everything under it (symlinks not followed)."""
    yield path, path.lstat()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            child = Path(dirpath, name)
            yield child, child.lstat()


def group_sharing_problems(path: Path, gid: int) -> list[str]:
    """What keeps the other members of ``gid`` from updating and deleting ``path``: every directory must have
    group ``gid``, setgid and g+rwx; every file group ``gid`` and g+rw (symlinks: their group only)."""
    problems = []
    for item, st in tree_modes(path):
        mode = st.st_mode
        if st.st_gid != gid:
            problems.append(f"{item}: group {st.st_gid}, not {gid}")
        elif stat.S_ISDIR(mode) and (mode & 0o2070) != 0o2070:
            problems.append(f"{item}: directory mode {stat.filemode(mode)}, not setgid and g+rwx")
        elif stat.S_ISREG(mode) and (mode & 0o060) != 0o060:
            problems.append(f"{item}: file mode {stat.filemode(mode)}, not g+rw")
    return problems


__all__ = [
    "GROUP_ROOT_NAME",
    "PREFIX",
    "SharedArea",
    "UnixUser",
    "Users",
    "build_server_prefix",
    "check_runnable",
    "ensure_group",
    "ensure_user",
    "group_sharing_problems",
    "make_shared_area",
    "make_users",
    "relocate_sysconfig",
    "remove_group",
    "remove_user",
    "remove_users",
    "requires_root",
    "shared_area_fixture",
    "start_server",
    "tree_modes",
    "unix_users_fixture",
    "why_not_runnable",
]
