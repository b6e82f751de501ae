"""How much space a step needed, where it is known: a full disk's error says it next to what is free.

The resolve gives the exact distributions to install; those found as local files (the administrator's
``find_links`` directories, or a ``file://`` URL) have a known size: a wheel's unpacked files, else the archive's.
Blocking (reads zip directories): call from a thread.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from urllib.parse import unquote, urlparse

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..layers.plan import Pin


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _archives(find_links: Iterable[str]) -> dict[tuple[str, Version], list[str]]:
    """The archives of the local find_links directories, by (canonical name, version)."""
    found: dict[tuple[str, Version], list[str]] = {}
    for link in find_links:
        directory = unquote(urlparse(link).path) if link.startswith("file://") else link
        if "://" in directory or not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            try:
                if entry.name.endswith(".whl"):
                    name, version, _, _ = parse_wheel_filename(entry.name)
                else:
                    name, version = parse_sdist_filename(entry.name)
            except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
                continue
            found.setdefault((name, version), []).append(entry.path)
    return found


def _unpacked(path: str) -> int | None:
    """A wheel's files once installed; an sdist's archive (a lower bound); None when unreadable."""
    try:
        if path.endswith(".whl"):
            with zipfile.ZipFile(path) as wheel:
                return sum(info.file_size for info in wheel.infolist())
        return os.path.getsize(path)
    except (OSError, zipfile.BadZipFile):
        return None


def _pin_bytes(pin: Pin, archives: dict[tuple[str, Version], list[str]]) -> int | None:
    if pin.url and pin.url.startswith("file://"):
        return _unpacked(unquote(urlparse(pin.url).path))
    try:
        paths = archives.get((pin.key, Version(pin.version)), [])
    except InvalidVersion:
        return None
    wheels = [p for p in paths if p.endswith(".whl")]
    return _unpacked((wheels or paths)[0]) if paths else None


def packages_needed(pins: tuple[Pin, ...], find_links: Iterable[str]) -> str | None:
    """ "the 2 packages to install (a 1.0, b 2.0) needed about 3.0 MiB", or None when no size is known."""
    if not pins:
        return None
    archives = _archives(find_links)
    sizes = [_pin_bytes(pin, archives) for pin in pins]
    known = [size for size in sizes if size is not None]
    if not known:
        return None
    names = ", ".join(f"{pin.name} {pin.version}" for pin in pins[:5]) + (", …" if len(pins) > 5 else "")
    count = f"the {len(pins)} package{'s' if len(pins) != 1 else ''} to install ({names})"
    unknown = f" (and more: {len(sizes) - len(known)} of them are not local files)" if len(known) < len(sizes) else ""
    return f"{count} needed about {format_bytes(sum(known))}{unknown}"


def conda_needed(packages: int, download_bytes: int) -> str | None:
    """A Conda solve's packages by their archives' size (from the channel's repodata): a lower bound, unpacked they
    take more."""
    if not packages or not download_bytes:
        return None
    plural = "s" if packages != 1 else ""
    return f"the {packages} Conda package{plural} solved needed at least {format_bytes(download_bytes)} (compressed)"
