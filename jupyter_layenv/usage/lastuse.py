"""When each environment last started a kernel, and for whom.

Kept per user in the server's data dir (``<data dir>/layenv/last_used.json``: ``{env path: {time, user}}``) and,
for an env in a group root, in that root (``<root>/.layenv-usage/<user>.json``: ``{path in the root: {time,
user}}``), so every member sees when anyone last used a group env. Each user writes only files of their own; the
user's server and the kernels nbconvert or papermill start (the provisioner records them too) may write one at the
same time, so a write holds an ``flock`` on ``<file>.lock`` and replaces the file whole (write aside, rename).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from jupyter_core.paths import jupyter_data_dir

from .. import fsread
from ..identity import account_name
from ..safewrite import chmod_dir, replace_at

GROUP_DIR = ".layenv-usage"


@dataclass(frozen=True)
class LastUse:
    time: str  # ISO 8601, UTC
    user: str

    @property
    def when(self) -> datetime:
        return datetime.fromisoformat(self.time)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LastUseStore:
    """Records kernel starts and answers ``last_used`` of every env from the files (cached by their mtimes)."""

    def __init__(self, data_dir: str) -> None:
        self.user_file = os.path.join(data_dir, "last_used.json")
        self._lock = threading.Lock()
        self._parsed: dict[str, tuple[tuple[int, int], dict[str, LastUse]]] = {}

    def record(self, env_path: str, user: str, group_root: str | None = None, when: str | None = None) -> None:
        """A kernel of ``env_path`` started for ``user``: in the group root when the env is a group env and the
        root takes it, else in the user's data dir."""
        use = LastUse(when or now_iso(), user)
        with self._lock:
            if group_root is not None:
                try:
                    self._write(_group_file(group_root, user), os.path.relpath(env_path, group_root), use, shared=True)
                    return
                except OSError:
                    pass  # a root this user may not write: the use is still theirs to remember
            self._write(self.user_file, env_path, use, shared=False)

    def last_used(self, env_paths: list[str], group_roots: dict[str, str]) -> dict[str, LastUse]:
        """The latest start of each env (``group_roots``: env path -> the group root it is in)."""
        found: dict[str, LastUse] = {}

        def keep(path: str, use: LastUse) -> None:
            if path not in found or use.time > found[path].time:
                found[path] = use

        mine = self._read(self.user_file)
        for path in env_paths:
            if path in mine:
                keep(path, mine[path])
        for root in set(group_roots.values()):
            directory = os.path.join(root, GROUP_DIR)
            for entry in fsread.listdir(directory):
                if not entry.endswith(".json"):
                    continue
                for rel, use in self._read(os.path.join(directory, entry)).items():
                    keep(os.path.normpath(os.path.join(root, rel)), use)
        return {path: found[path] for path in env_paths if path in found}

    def _read(self, path: str) -> dict[str, LastUse]:
        try:
            info = os.stat(path)
        except OSError:
            return {}
        mtime = (info.st_ino, info.st_mtime_ns)  # a rewrite is a new inode: never mistaken for the old file
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        uses = _parse(fsread.read_small_text(path))
        self._parsed[path] = (mtime, uses)
        return uses

    def _write(self, path: str, key: str, use: LastUse, *, shared: bool) -> None:
        """Everything in the file's directory, opened once without following a link: in a group root any member
        may replace ``.layenv-usage`` with a link to a directory this user may write (OSError ELOOP: not written)."""
        directory, name = os.path.split(path)
        if shared and not os.path.lexists(directory):
            os.mkdir(directory)
            chmod_dir(directory, 0o2775)  # members add their own files; the group is the root's (setgid)
        os.makedirs(directory, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            lock = os.open(f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process's record between our read and rename is kept
                self._replace(dir_fd, name, key, use, shared=shared)
            finally:
                os.close(lock)
        finally:
            os.close(dir_fd)

    def _replace(self, dir_fd: int, name: str, key: str, use: LastUse, *, shared: bool) -> None:
        data = fsread.read_small_at(dir_fd, name)
        uses = {k: {"time": v.time, "user": v.user} for k, v in _parse(_text(data)).items()}
        uses[key] = {"time": use.time, "user": use.user}
        # readable by the other members where shared
        replace_at(dir_fd, name, json.dumps(uses, indent=1, sort_keys=True), 0o644 if shared else 0o600)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def _parse(text: str | None) -> dict[str, LastUse]:
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        raw = {}
    return {
        key: LastUse(str(value["time"]), str(value.get("user") or "?"))
        for key, value in (raw.items() if isinstance(raw, dict) else [])
        if isinstance(value, dict) and isinstance(value.get("time"), str)
    }


def record_start(env_path: str, group_root: str | None) -> None:
    """A kernel of ``env_path`` started outside the server (nbconvert, papermill): the same record as the server's,
    in the same files (this user's data dir, or the group root)."""
    LastUseStore(os.path.join(jupyter_data_dir(), "layenv")).record(env_path, account_name(), group_root)


def _group_file(root: str, user: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in user)
    return os.path.join(root, GROUP_DIR, f"{safe}.json")
