"""Per-env file locks (``flock``), so two servers, or a server and the CLI, sharing a root never build one env twice.

A lock lives beside the env it guards: ``<parent>/.layenv-locks/<name>.lock``. ``flock`` conflicts between two
open files even inside one process, and the kernel drops it when its holder dies, which is how recovery (the
server's next start, or another server sharing the root) tells an interrupted job from one still running elsewhere.

On NFS, Linux turns ``flock`` into a whole-file POSIX lock that the NFSv4 server enforces across machines; an
exclusive one needs the file open for writing. In a group-writable root the lock directory and files are made
group-writable too, so every member's server opens and takes the same lock. (Locally ``flock`` also works on a
lock file opened read-only, the fallback when someone else's file is not writable for us.)

A lock file exists only while its lock is held (or its holder died holding it): a released one is removed, so a
shared root does not collect one per name ever tried. The holder removes it while still holding the lock, and a
taker checks after ``flock`` that its file is still the one at the path (else it locked a removed file and tries
again), so two takers of one name always lock the same file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import stat

from ..safewrite import chmod_dir

LOCK_DIR = ".layenv-locks"
_NAME_ROOM = 255 - len(".lock")  # NAME_MAX, less the lock file's suffix


class PlantedLink(Exception):
    """The lock directory is a symbolic link (or not a directory): in a shared root anyone could have planted it."""

    def __init__(self, directory: str) -> None:
        try:
            target = f" (to {os.readlink(directory)})"
        except OSError:
            target = ""
        super().__init__(
            f"{directory} is a symbolic link{target} or not a directory: jupyter_layenv never follows a link for "
            f"what it creates in a root, where anyone who can write the root could plant one; remove it "
            f"(rm {directory}) and try again"
        )


def lock_path(env_path: str) -> str:
    parent, name = os.path.split(env_path.rstrip(os.sep))
    if len(os.fsencode(name)) > _NAME_ROOM:  # "<name>.lock" would pass the 255 bytes a file name may have
        name = f"{short_name(env_path)}-{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"
    return os.path.join(parent, LOCK_DIR, f"{name}.lock")


def short_name(env_path: str, size: int = 100) -> str:
    """The start of an env's folder name, at most ``size`` bytes: room for a prefix and a suffix in a file name."""
    return os.fsencode(os.path.basename(env_path.rstrip(os.sep)))[:size].decode("utf-8", "ignore")


class EnvLock:
    """An exclusive, non-blocking lock on one env path; blocking syscalls, so call from a thread."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, env_path: str, *, create: bool = True) -> EnvLock | None:
        """The lock, or ``None`` when another holder has it or its file cannot be opened (a planted link); without
        ``create`` no lock directory is made, and where there is none (or its file may not be made) the lock holds no
        file: nobody ever locked an env there, nobody to wait for.

        Raises :class:`PlantedLink` when the lock directory is a link: nothing is created through it.
        """
        path = lock_path(env_path)
        directory = os.path.dirname(path)
        shared = _group_writable(os.path.dirname(directory))
        if create:
            _make_lock_dir(directory, shared)
        try:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if create:
                raise
            return cls(path, -1)  # nobody ever locked an env here
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PlantedLink(directory) from None
            raise
        try:
            return cls._take(path, dir_fd, create, shared)
        finally:
            os.close(dir_fd)

    @classmethod
    def _take(cls, path: str, dir_fd: int, create: bool, shared: bool) -> EnvLock | None:
        name = os.path.basename(path)
        for _ in range(100):  # each retry means a holder released (and removed) the file in between
            fd = _open_lock(name, dir_fd, create, shared)
            if fd is None:  # a symlink planted as the lock file (O_NOFOLLOW), or no permission: never ours
                return None
            if fd < 0:  # nobody holds this env, and no file may be made for it (a read-only lock directory)
                return cls(path, -1)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno == errno.ESTALE:  # NFS: removed on the server by its last holder since we opened it
                    continue
                return None
            if _is_at(fd, path):
                return cls(path, fd)
            os.close(fd)  # the file was removed by its last holder after we opened it: lock the one there now
        return None

    @property
    def fd(self) -> int | None:
        """The locked descriptor (``None`` when there is none to share): a build step keeps it open too."""
        return self._fd if self._fd is not None and self._fd >= 0 else None

    def release(self) -> None:
        if self._fd is not None and self._fd >= 0:
            _is_at(self._fd, self.path, remove=True)  # while held: a taker that opened it sees it gone, tries again
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd = None


def _is_at(fd: int, path: str, *, remove: bool = False) -> bool:
    """Whether the locked descriptor is still the file at ``path`` (not one its last holder removed); with
    ``remove`` (a release, while still held), that file is then removed: one we may not remove (another member's, a
    read-only mount) stays, which is harmless.

    Looked up through the lock directory opened afresh (no link followed): on NFS an open revalidates the directory
    (close-to-open), where a lookup through an older descriptor may answer from a cache that still has the removed
    file. The file itself is never opened a second time: on NFS, closing any descriptor of it would drop our lock.
    """
    try:
        dir_fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    name = os.path.basename(path)
    try:
        there, mine = os.stat(name, dir_fd=dir_fd, follow_symlinks=False), os.fstat(fd)
        if (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            return False
        if remove:
            os.unlink(name, dir_fd=dir_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(dir_fd)


def _group_writable(directory: str) -> bool:
    try:
        return bool(os.stat(directory).st_mode & stat.S_IWGRP)
    except OSError:
        return False


def _make_lock_dir(directory: str, shared: bool) -> None:
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    try:
        os.mkdir(directory, 0o2775 if shared else 0o755)
    except FileExistsError:
        return
    if shared:  # the umask may have taken the group's write bit; never through a link swapped in since the mkdir
        with contextlib.suppress(OSError):  # a link: the open that follows says PlantedLink
            chmod_dir(directory, 0o2775)


def _open_lock(name: str, dir_fd: int, create: bool, shared: bool) -> int | None:
    """A descriptor to lock: -1 when the file does not exist and may not be made (only without ``create``), ``None``
    when it cannot be opened.

    Opened relative to the lock directory's descriptor, never following a link: what is locked is what is there.
    Made also without ``create`` (in a lock directory there is already): released locks leave no file, and a
    taker must hold the same file as a concurrent build would.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CREAT
    try:
        fd = os.open(name, flags, 0o664 if shared else 0o644, dir_fd=dir_fd)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            return None  # e.g. ELOOP: a link planted as the lock file
        try:  # not writable for us (another member's file, a read-only mount): a local flock works on it too
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        except FileNotFoundError:
            return None if create else -1
        except OSError:
            return None
    if shared:
        try:
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o664)
        except OSError:
            pass
    return fd
