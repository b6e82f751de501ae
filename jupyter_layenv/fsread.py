"""Small, failure-tolerant file reads shared by the locators.

Discovery must never raise on a strange filesystem: every helper answers ``None`` (or an empty result)
for a path that is missing, unreadable, a dangling link or a symlink loop.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import IO, Any

MAX_SMALL_FILE = 256 * 1024
# Read in chunks this small: one read of MAX_SMALL_FILE allocates (maps and unmaps) 256 KiB for a 300-byte
# pyvenv.cfg, which cost 10x the whole open/read/close (measured at 16-29 µs against 2.5 µs).
_CHUNK = 16 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (OSError, ValueError):
        return []


def read_small_text(path: str) -> str | None:
    """The text of a small config file; ``None`` when absent, unreadable, too large or not UTF-8."""
    data = read_small_bytes(path)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_small_bytes(path: str) -> bytes | None:
    """The bytes of a small file; ``None`` when absent, unreadable or too large.

    ``os.open``/``os.read``, not ``open()``: no file object, and no ``fstat`` (which ``open()`` makes to refuse a
    directory; reading one fails with EISDIR here): a cold listing reads each venv's pyvenv.cfg and kernel.json.
    ``O_NONBLOCK``: a FIFO planted in a shared root (as ``pyvenv.cfg``, say) would block the open until some writer
    came; non-blocking, it reads as empty (or fails with EAGAIN) at once. A regular file reads as without it.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except (OSError, ValueError):
        return None
    return _read_and_close(fd)


def read_small_at(dir_fd: int, name: str) -> bytes | None:
    """:func:`read_small_bytes` of ``name`` relative to a directory's descriptor, never through a link (a file in a
    directory other users may write: see :mod:`.safewrite`)."""
    try:
        fd = os.open(name, _READ_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except (OSError, ValueError):
        return None
    return _read_and_close(fd)


def _read_and_close(fd: int) -> bytes | None:
    try:
        return _read_fd(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_fd(fd: int) -> bytes | None:
    """An open small file's bytes (``None``: too large). A read of a regular file returns less than it asked for only
    at the file's end: no second read to be told so (a cold listing reads each venv's pyvenv.cfg and kernel.json)."""
    first = os.read(fd, _CHUNK)
    if len(first) < _CHUNK:  # the common case: all of it in the first read
        return first
    chunk = os.read(fd, _CHUNK)
    if not chunk:
        return first
    chunks = [first, chunk]
    size = len(first) + len(chunk)
    while size <= MAX_SMALL_FILE and (chunk := os.read(fd, _CHUNK)):
        size += len(chunk)
        chunks.append(chunk)
    return None if size > MAX_SMALL_FILE else b"".join(chunks)


def open_regular(path: str, mode: str = "r", **options: Any) -> IO[Any]:
    """``open(path, mode)`` for reading a file inside an environment, which need not be what it claims: a FIFO (any
    member of a group root may plant one as a package's ``METADATA``) would block ``open`` until a writer came, and a
    device read forever. Opened without blocking, and refused (``OSError``) unless it is a regular file."""
    fd = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        return os.fdopen(fd, mode, **options)
    except BaseException:
        os.close(fd)
        raise


def is_dir(path: str) -> bool:
    try:
        return os.path.isdir(path)
    except (OSError, ValueError):
        return False


def exists(path: str) -> bool:
    """Whether ``path`` is there, following links, as ``stat`` says, without the exception an absent path costs
    (``faccessat``, which also fails where a directory on the way cannot be searched, as ``stat`` does)."""
    try:
        return os.access(path, os.F_OK)
    except ValueError:  # a NUL in the path
        return False


def link_problem(path: str) -> str | None:
    """Why ``path`` cannot be followed ("symlink loop", "dangling link"), or ``None`` if it can."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink loop"
        if os.path.islink(path):
            return "dangling link"
        return None
    return None


def expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(os.path.expandvars(path)))
