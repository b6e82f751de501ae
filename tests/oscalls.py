"""The file-system calls code under test makes, recorded by patching ``os`` (and ``open``), for the tests that count
what a listing or a check reads: one way for all of them, so that a call one test counts is counted alike by all."""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Iterable

import pytest

STATS = ("stat", "lstat")
LISTINGS = ("listdir", "scandir")
LOOKS = STATS + LISTINGS  # every way of looking at a directory or its entries
BUILTIN_OPEN = "builtins.open"  # the built-in ``open`` (``open`` is ``os.open``)


class OsCalls:
    """The calls recorded, ``(name, path)`` in the order they were made (``name``: ``stat``, ``open``...)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def paths(self, *names: str) -> list[str]:
        """The paths given to the calls of ``names`` (to every call recorded when none is named), in order."""
        return [path for name, path in self.calls if not names or name in names]


def record_os_calls(
    monkeypatch: pytest.MonkeyPatch, names: Iterable[str] = LOOKS, *, this_thread_only: bool = True
) -> OsCalls:
    """Record each call of ``os.<name>`` (or of :data:`BUILTIN_OPEN`) from now until ``monkeypatch`` is undone; the real
    function answers. ``this_thread_only`` (the default): the calls of the calling thread alone, a listing's own reads;
    not the root probe's, nor those of a background thread an earlier test left finishing its walk (a size thread's
    ``lstat``/``scandir`` counted by the next test made that test fail now and then in a full run)."""
    recorded = OsCalls()
    thread = threading.get_ident() if this_thread_only else None

    def recording(name: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(path: object = ".", *args: object, **kwargs: object) -> object:
            if thread is None or threading.get_ident() == thread:
                recorded.calls.append((name, _text(path)))
            return real(path, *args, **kwargs)

        return call

    for name in names:
        owner, attribute = (builtins, "open") if name == BUILTIN_OPEN else (os, name)
        monkeypatch.setattr(owner, attribute, recording(name, getattr(owner, attribute)))
    return recorded


def _text(path: object) -> str:
    """A path argument as text (a file descriptor as its number)."""
    return os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path)
