"""Replacing a small file in a directory other users may write (a group root, a group layer), never through a link.

Any member may plant a symbolic link in such a directory, at the name a writer is about to use (a fixed temporary
name) or as the directory itself: ``open(path, "w")`` would then truncate and overwrite whatever file the link points
to that the writer may write (their ``~/.bashrc``). Here the directory is opened without following a link, the new
content written under a fresh name made with ``O_EXCL | O_NOFOLLOW``, and renamed over the file, all relative to the
directory's descriptor. Blocking.
"""

from __future__ import annotations

import os
import secrets


def replace_file(directory: str, name: str, text: str, mode: int | None = None) -> None:
    """``directory/name`` holds ``text``, with ``mode`` (``None``: 0666 less the umask, as ``open`` makes a file);
    :class:`OSError` (ELOOP) when ``directory`` is a link. An error names ``directory/name`` (a full disk's message
    says where from it), not the temporary name relative to the directory."""
    try:
        _replace_file(directory, name, text, mode)
    except OSError as err:
        raise OSError(err.errno, err.strerror, os.path.join(directory, name)) from None


def _replace_file(directory: str, name: str, text: str, mode: int | None) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        replace_at(dir_fd, name, text, mode)
    finally:
        os.close(dir_fd)


def replace_at(dir_fd: int, name: str, text: str, mode: int | None = None) -> None:
    """:func:`replace_file`, relative to the directory's descriptor the caller opened (without following a link)."""
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=dir_fd)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=dir_fd)
        raise


def chmod_dir(path: str, mode: int, like: os.stat_result | None = None) -> None:
    """``chmod`` of a directory this process just made where others may write: through a descriptor opened without
    following a link, so a member who replaced it by a link to a directory of ours (``~``) in between gets no
    ``chmod`` of that one (OSError ELOOP). ``like``: also take its access and modification times (``copystat``)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, mode)
        if like is not None:
            os.utime(fd, ns=(like.st_atime_ns, like.st_mtime_ns))
    finally:
        os.close(fd)
