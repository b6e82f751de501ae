"""The mount table, from ``/proc/self/mountinfo``: read again only when the kernel signals a change (``poll``, about
1 µs), which a file kept open is told of. Root probes (local devices) and change notifications (watchable file
systems, mount points under a root) each keep a table of their own: one open file tells one reader of a change."""

from __future__ import annotations

import os
import re
import select
from dataclasses import dataclass
from typing import BinaryIO

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    device: int
    fs_type: str
    point: str  # unescaped (a space is ``\040`` in the file)
    read_only: bool  # this mount, or the file system under it, is mounted read-only


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``mountinfo`` text, in its order; a line that is not one is passed over."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 6:
            continue
        after = fields.index("-")
        major, _, minor = fields[2].partition(":")
        try:
            device = os.makedev(int(major), int(minor))
        except ValueError:
            continue
        fs_type = fields[after + 1] if len(fields) > after + 1 else ""
        super_options = fields[after + 3] if len(fields) > after + 3 else ""
        read_only = "rw" not in fields[5].split(",") or "rw" not in super_options.split(",")
        point = re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[4])
        mounts.append(Mount(device, fs_type, point, read_only))
    return mounts


class MountTable:
    """This process's mounts, kept current by :meth:`changed`; none where there is no ``mountinfo`` (not Linux)."""

    def __init__(self, *, parse: bool = True) -> None:
        """``parse=False``: the file is opened (its changes counted from now) but read at the first :meth:`changed`
        or :meth:`parse`, out of the caller's hurry."""
        self.mounts: list[Mount] = []
        self._file: BinaryIO | None = None
        try:
            self._file = open(MOUNTINFO, "rb")  # noqa: SIM115  (kept open: poll watches it)
            self._poll = select.poll()
            self._poll.register(self._file.fileno(), select.POLLPRI | select.POLLERR)
            if parse:
                self._read()
        except (OSError, ValueError, AttributeError):  # no mountinfo, no poll
            self.close()

    @property
    def closed(self) -> bool:
        return self._file is None

    def changed(self) -> bool:
        """Whether the mount table changed since it was last read; if so :attr:`mounts` is read again."""
        if self._file is None or not self._poll.poll(0):
            return False
        self.parse()
        return True

    def parse(self) -> None:
        """Reads the table (one opened with ``parse=False``) without consuming a change :meth:`changed` reports."""
        if self._file is not None:
            try:
                self._read()
            except (OSError, ValueError):
                self.mounts = []
                self.close()

    def _read(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        self.mounts = parse_mountinfo(self._file.read().decode("utf-8", "replace"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
