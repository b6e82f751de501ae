"""Mounts for the tests of hostile or full file systems (root only): a test without the right to mount is skipped."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def mount(args: list[str]) -> None:
    """``mount ARGS``; a root without the right to mount (an unprivileged container) skips the test."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` bind-mounted read-only over itself (root only); always unmounted again."""
    mount(["--bind", str(directory), str(directory)])
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@contextlib.contextmanager
def tmpfs(directory: Path, options: str) -> Iterator[Path]:
    """A small tmpfs over ``directory`` (root only), for a disk that fills up; always unmounted again."""
    directory.mkdir(parents=True, exist_ok=True)
    mount(["-t", "tmpfs", "-o", options, "layenv-test", str(directory)])
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


@contextlib.contextmanager
def ramfs(directory: Path) -> Iterator[Path]:
    """A ramfs over ``directory`` (root only): a local file system change notifications never trust (it is not in
    their list of file systems whose every change makes an event); always unmounted again."""
    directory.mkdir(parents=True, exist_ok=True)
    mount(["-t", "ramfs", "layenv-test", str(directory)])
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)
