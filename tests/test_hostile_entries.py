"""What a hostile member can plant in a shared root does not hang, break or spoof another member's commands.

Anyone who may write a group root may leave there a FIFO where a file is read (``pyvenv.cfg``, a package's
``METADATA``), or an environment whose name holds a newline, terminal escapes or bytes that are not UTF-8.
Another member's ``jupyter layenv list``, ``doctor``, ``export``, ``install --dry-run`` and ``sync`` must finish at
once, print such names escaped (no forged lines, no escape sequences reaching the terminal), write valid UTF-8
JSON and kernelspecs, and never a traceback. Real CLI runs on real layers (virtualenv on a Conda-style base); the
plants are made by the test's own user, which is what another member's would look like to the reader.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from envtree import add_pure_python_package, make_layered_env, site_packages
from isolated_ksm import looking_only_at
from jupyter_process import JUPYTER
from oscalls import record_os_calls

from jupyter_layenv import removal
from jupyter_layenv.create import builder
from jupyter_layenv.create.locks import EnvLock, PlantedLink
from jupyter_layenv.layers import revisions
from jupyter_layenv.usage.lastuse import LastUseStore

NEWLINE_ESC = "esc\x1b[31mred\nforged"  # a newline and an ANSI colour sequence
NOT_UTF8 = os.fsdecode(b"real\xffenv")  # the byte 0xff, as Python names it: "real\udcffenv"
TIMEOUT = 20  # a hang fails here, not at the suite's end


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``jupyter layenv ARGS`` with its output as bytes (what reaches the terminal or the pipe, unchanged)."""
    try:
        return subprocess.run([JUPYTER, "layenv", *args], capture_output=True, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"`jupyter layenv {' '.join(args)}` hung for {TIMEOUT} s: {err.stderr!r}")


@pytest.fixture
def planted(clean_create_home: Path) -> Iterator[Path]:
    """~/.virtualenvs (a venv root, as a group root is) with a FIFO for a pyvenv.cfg, a layer whose package's
    METADATA is a FIFO, and layers named with a newline and terminal escapes, and with a byte that is not UTF-8."""
    root = clean_create_home / ".virtualenvs"
    base = clean_create_home / "miniconda3" / "envs" / "py311_ai"
    layer = make_layered_env(base, root / "blocked")
    for copy in (root / NEWLINE_ESC, root / NOT_UTF8, clean_create_home / ".venvs" / "elsewhere"):
        shutil.copytree(layer, copy, symlinks=True)
    add_pure_python_package(site_packages(layer), "trap", "1.0")
    metadata = site_packages(layer) / "trap-1.0.dist-info" / "METADATA"
    metadata.unlink()
    os.mkfifo(metadata)
    (root / "fifocfg" / "bin").mkdir(parents=True)
    os.mkfifo(root / "fifocfg" / "pyvenv.cfg")
    (root / "nopython" / "bin").mkdir(parents=True)  # a venv-looking directory with no interpreter
    (root / "nopython" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    # links to envs: one to an env of another root, found through the link first (~/.virtualenvs is searched before
    # ~/.venvs), and one beside the env it points to, in the same root
    (root / "aa-alias").symlink_to(clean_create_home / ".venvs" / "elsewhere")
    (root / "ab-alias").symlink_to(root / NEWLINE_ESC)
    yield root
    shutil.rmtree(clean_create_home / ".venvs" / "elsewhere")


def strict_utf8(env: dict[str, str]) -> dict[str, str]:
    """A terminal whose encoding refuses what is not UTF-8 (a UTF-8 locale's default)."""
    return {**env, "PYTHONIOENCODING": "utf-8:strict"}


def test_fifos_planted_where_files_are_read_hang_no_command(cli_env: dict[str, str], planted: Path):
    """``doctor`` reads every package's METADATA (health), ``export`` the layer's, ``install --dry-run`` hands them to
    the resolver; ``list`` (below) each venv's pyvenv.cfg: a FIFO there blocked each of them until killed."""
    for args in (
        ("doctor",),
        ("export", "blocked", "--format", "environment.yml"),
        ("install", "blocked", "--dry-run", "trap"),
    ):
        proc = run(*args, env=cli_env)
        assert b"Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 5), (args, proc.returncode, proc.stderr)
        assert b"\x1b" not in proc.stdout, args  # doctor prints the names: escaped


def test_names_that_are_not_plain_text_are_escaped_and_never_break_the_output(cli_env: dict[str, str], planted: Path):
    """A UTF-8 terminal (``PYTHONIOENCODING=utf-8:strict``, as a UTF-8 locale gives) got a ``UnicodeEncodeError`` from
    ``list``, ``list --json`` and ``sync``; a plain one got the newline and the escape sequence as they are, and
    ``sync`` left a cut ``kernel.json`` that every later command logged a traceback for."""
    env = strict_utf8(cli_env)
    synced = run("sync", "--user", env=env)
    assert synced.returncode == 0 and b"Traceback" not in synced.stderr, synced.stderr
    kernels = Path(cli_env["JUPYTER_DATA_DIR"]) / "kernels"
    specs = {d.name: json.loads((d / "kernel.json").read_bytes().decode("utf-8")) for d in kernels.iterdir()}
    argv0 = {os.fsencode(spec["argv"][0]) for spec in specs.values()}  # the interpreter, byte for byte
    assert os.fsencode(planted / NOT_UTF8 / "bin" / "python") in argv0, specs

    (kernels / "handmade").mkdir()
    (kernels / "handmade" / "kernel.json").write_text('{"argv": ["python", ')  # someone's cut kernelspec
    text = run("list", env=env)  # reads the synced kernelspecs back too
    assert text.returncode == 0 and b"Traceback" not in text.stderr, text.stderr  # one line said it, then a traceback
    assert [line for line in text.stderr.splitlines() if b"cannot read kernelspec" in line] == [
        f"[ListApp] WARNING | jupyter_layenv: cannot read kernelspec handmade in {kernels / 'handmade'}: "
        "Expecting value: line 1 column 21 (char 20)".encode()
    ], text.stderr
    out = text.stdout.decode("utf-8")  # strict: valid UTF-8
    assert "\x1b" not in out and "\r" not in out
    assert "esc\\x1b[31mred\\nforged" in out and "real\\xffenv" in out, out
    assert not [line for line in out.splitlines() if line.startswith("forged")], out  # no line of its own

    as_json = run("list", "--json", env=env)
    assert as_json.returncode == 0 and b"Traceback" not in as_json.stderr, as_json.stderr
    listing = json.loads(as_json.stdout.decode("utf-8"))  # valid UTF-8 JSON; the name escaped as JSON does
    paths = {os.fsencode(e["path"]) for e in listing["environments"]}
    assert os.fsencode(planted / NOT_UTF8) in paths and os.fsencode(planted / NEWLINE_ESC) in paths
    assert b"\\udcff" in as_json.stdout  # what the REST listing sends for it too (JSON's escape)
    skipped = {s["path"]: s["reason"] for s in listing["skipped"]}
    # what is wrong with it, not "garbled pyvenv.cfg (no 'home = …' line)"
    assert skipped[str(planted / "fifocfg")].startswith("pyvenv.cfg is not a regular file"), skipped
    # an env is listed where it is, never under a link a member planted to it (which took its name and kernel, and
    # sent the env itself to "skipped" as "not an environment … delete it (rm -r …)"); the link is said to be one
    listed = {e["path"] for e in listing["environments"]}
    elsewhere = Path(cli_env["HOME"]) / ".venvs" / "elsewhere"
    assert str(elsewhere) in listed and str(planted / NEWLINE_ESC) in listed, sorted(listed)
    for link in ("aa-alias", "ab-alias"):
        assert str(planted / link) not in listed
        assert skipped[str(planted / link)].startswith("a symbolic link to "), skipped
        assert f"rm {planted / link}" in skipped[str(planted / link)] and "rm -r" not in skipped[str(planted / link)]
    (nopython,) = [e for e in listing["environments"] if e["path"] == str(planted / "nopython")]
    assert "recreate it" in nopython["skipped_reason"], nopython  # said what to do (it said only what was wrong)


def test_junk_directories_in_a_root_cost_no_lock_each_per_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Directories a member leaves in a root (10,000 took 0.4 s of every member's listing) are reported with what to
    do; only one whose name has a lock file (a build holds it from before its directory exists) is asked whether a
    build holds it. Each was asked, which makes and removes a lock file: 4 opens each, NFS round trips."""
    root = tmp_path / "root"
    for i in range(200):
        (root / f"junk{i}").mkdir(parents=True)
    (root / "building").mkdir()
    lock = EnvLock.try_acquire(str(root / "building"))  # a live build holds its lock: not a leftover
    assert lock is not None
    try:
        discovered, _ = looking_only_at(venv_roots=[str(root)]).current()
        calls = record_os_calls(monkeypatch, ["open"])
        found = removal.unlisted([str(root)], discovered)
        monkeypatch.undo()
    finally:
        lock.release()
    assert sorted(found) == sorted(str(root / f"junk{i}") for i in range(200))
    assert len(calls.paths("open")) <= 6, calls.calls


def test_a_usage_directory_planted_as_a_link_is_never_written_through(tmp_path: Path):
    """A member replaces a group root's ``.layenv-usage`` with a link to a directory another member may write (their
    project, their home): that member's next kernel start wrote its record there, replacing a file of theirs named
    ``<user>.json`` and leaving ``<user>.json.lock`` beside it. The use is now kept in the user's own data dir."""
    root, elsewhere = tmp_path / "group", tmp_path / "bobs-project"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "bob.json").write_text("bob's own file\n")
    (root / ".layenv-usage").symlink_to(elsewhere)
    store = LastUseStore(str(tmp_path / "data"))
    store.record(str(root / "env"), "bob", group_root=str(root))
    assert sorted(os.listdir(elsewhere)) == ["bob.json"] and (elsewhere / "bob.json").read_text() == "bob's own file\n"
    assert store.last_used([str(root / "env")], {})[str(root / "env")].user == "bob"


def test_a_revision_record_never_writes_through_a_link_planted_in_the_layer(tmp_path: Path):
    """A group layer's ``.layenv-revisions`` is group-writable: a member could plant the next record's temporary file
    (``000001.json.tmp``, a fixed name) as a link to a file of whoever changes the layer next, whose change then
    truncated and overwrote that file (their ``~/.bashrc``, say). Or plant the directory itself as a link."""
    layer, victim = tmp_path / "layer", tmp_path / "bashrc"
    (layer / ".layenv-revisions").mkdir(parents=True)
    victim.write_text("export PATH=mine\n")
    (layer / ".layenv-revisions" / "000001.json.tmp").symlink_to(victim)
    change = {"user": "bob", "request": {"action": "change"}, "lock": [], "base_path": None, "python_version": None}
    revisions.record(str(layer), **change)
    assert victim.read_text() == "export PATH=mine\n"
    assert [revision.revision for revision in revisions.read_all(str(layer))] == [1]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(layer / ".layenv-revisions")
    (layer / ".layenv-revisions").symlink_to(elsewhere)
    with pytest.raises(OSError):
        revisions.record(str(layer), **change)
    assert os.listdir(elsewhere) == []


def test_giving_a_new_env_to_its_group_never_follows_a_file_swapped_for_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """At the end of a build in a group root, the builder gives the env's files to the group (g+rw) while the members
    may write its directories. It looked at each file (``lstat``) and then changed it by path: a member who swapped
    the file for a link in between (simulated here at the exact moment) had the builder's own file made group-
    writable, its ``~/.bashrc`` say, which that member could then edit."""
    env, victim = tmp_path / "env", tmp_path / "bashrc"
    (env / "lib").mkdir(parents=True)
    target, other = env / "lib" / "module.py", env / "lib" / "other.py"
    target.write_text("x = 1\n")
    other.write_text("y = 2\n")
    victim.write_text("export PATH=mine\n")
    victim.chmod(0o600)
    real_lstat = os.lstat

    def raced(path, *args, **kwargs):  # the member wins the race: the file is a link right after it is looked at
        st = real_lstat(path, *args, **kwargs)
        if os.fspath(path) == str(target) and not target.is_symlink():
            target.unlink()
            target.symlink_to(victim)
        return st

    monkeypatch.setattr(os, "lstat", raced)
    builder.share_with_group(str(env), os.getgid())
    monkeypatch.undo()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert other.stat().st_mode & 0o060 == 0o060  # the env's own files are the group's


def test_a_directory_made_in_a_group_root_is_never_chmodded_through_a_link_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The first create in a group root makes ``.layenv-locks`` and the first kernel start ``.layenv-usage``, then
    makes them group-writable (2775) by path. A member who replaced the new directory by a link in between (the root
    is group-writable: any member may rename its entries; simulated here at the exact moment) got the ``chmod`` applied
    to the directory the link names: the creator's home made 2775, readable by all."""
    root, home = tmp_path / "group", tmp_path / "home"
    root.mkdir()
    root.chmod(0o2775)
    home.mkdir()
    home.chmod(0o700)
    real_mkdir = os.mkdir

    def raced(path, *args, **kwargs):  # the member wins the race: the new directory is a link right after it is made
        real_mkdir(path, *args, **kwargs)
        if os.path.basename(os.fspath(path)) in (".layenv-locks", ".layenv-usage"):
            os.rename(path, f"{os.fspath(path)}.moved")
            os.symlink(home, path)

    monkeypatch.setattr(os, "mkdir", raced)
    with contextlib.suppress(OSError, PlantedLink):  # refused: the lock directory is a link now
        EnvLock.try_acquire(str(root / "env"))
    LastUseStore(str(tmp_path / "data")).record(str(root / "env"), "bob", group_root=str(root))
    monkeypatch.undo()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_new_envs_marker_is_never_written_through_a_link_swapped_in_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A create makes the env's directory, then writes its ``.layenv-building`` marker into it by path: a member who
    replaced the new directory by a link (simulated at the exact moment) had the marker written in the directory the
    link names (the creator's own). The create now fails there, and leaves the link's target alone."""
    root, home = tmp_path / "group", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    real_mkdir = os.mkdir

    def raced(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if os.fspath(path) == str(root / "env"):
            os.rename(path, root / "moved")
            os.symlink(home, path)

    monkeypatch.setattr(os, "mkdir", raced)
    with contextlib.suppress(OSError):
        builder.reserve(str(root / "env"), None, "job1")
    monkeypatch.undo()
    assert os.listdir(home) == []
