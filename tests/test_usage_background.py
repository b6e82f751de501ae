"""The one background worker behind sizes and health: what it does when a measure fails, when an env is missing,
and what a command waits for (the three places the size and health trackers used to differ)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jupyter_layenv.discovery import RACY_WINDOW_NS
from jupyter_layenv.usage import sizing
from jupyter_layenv.usage.background import Background, Stamps, stamp, unchanged
from jupyter_layenv.usage.sizing import SizeTracker

WAIT = 20  # seconds a waiter may take before the test calls it stuck


def within(call, *args):
    """``call(*args)`` on another thread; a wait that never ends fails the test instead of hanging it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call, *args).result(timeout=WAIT)
    finally:
        pool.shutdown(wait=False)


def same(path: str) -> str:
    return path


def test_a_failing_measure_is_logged_and_the_thread_goes_on(caplog: pytest.LogCaptureFixture):
    """Broken by: a thread that dies on an error (every later waiter waits for ever), or an error that drops what
    was known before."""
    fail = {"bad"}

    def measure(path: str) -> str:
        if path in fail:
            raise OSError(f"cannot read {path}")
        return f"size of {path}"

    tracker: Background[str, str] = Background(measure, lambda known, path: False, name="test-bg", refresh=0)
    try:
        with caplog.at_level(logging.WARNING, logger="jupyter_layenv.usage"):
            assert within(tracker.wait_for, ["bad"], same) == {}  # failed, never measured: not in the answer
        assert "test-bg of bad failed: cannot read bad" in caplog.text
        assert within(tracker.wait_for, ["good"], same) == {"good": "size of good"}  # queued after the failure
        fail.add("good")
        assert within(tracker.wait_for, ["good"], same) == {"good": "size of good"}  # what was known is kept
        assert tracker.lookup(["good", "bad"], same) == {"good": "size of good", "bad": None}
        fail.clear()
        assert within(tracker.wait_for, ["bad"], same) == {"bad": "size of bad"}  # tried again when due
    finally:
        tracker.stop()


def test_a_missing_env_is_unchanged_until_it_appears(tmp_path: Path):
    """Broken by: a missing directory counted as changed (the gone env walked again every ``refresh`` seconds), or
    one that appears not seen."""
    env = tmp_path / "env"
    walks: list[str] = []

    def measure(path: str) -> Stamps:
        walks.append(path)
        return stamp([path])[0]

    tracker: Background[str, Stamps] = Background(measure, lambda known, _: unchanged(known), name="test-bg", refresh=0)
    try:
        assert within(tracker.wait_for, [str(env)], same) == {str(env): ((str(env), -1),)}
        within(tracker.wait_for, [str(env)], same)
        assert walks == [str(env)]  # still absent: not measured again
        env.mkdir()
        stamps = within(tracker.wait_for, [str(env)], same)[str(env)]
        assert stamps[0][1] == env.stat().st_mtime_ns
        assert walks == [str(env), str(env)]
    finally:
        tracker.stop()


def test_a_missing_env_measures_nothing_then_its_size_once_made(tmp_path: Path):
    """The size tracker on the same rule: nothing while absent, the files once the env is there."""
    env = tmp_path / "env"
    tracker = SizeTracker(refresh=0)
    try:
        assert within(tracker.measured, [str(env)])[str(env)].size_bytes == 0
        env.mkdir()
        (env / "data").write_bytes(b"x" * 100_000)
        measured = within(tracker.measured, [str(env)])[str(env)]
        assert measured.size_bytes >= 100_000 and measured.files == 1
    finally:
        tracker.stop()


def test_a_command_waits_for_the_envs_it_asked_only():
    """Broken by: a wait for everything queued (a command's answer held up by walks a listing queued for others)."""
    release = threading.Event()

    def measure(path: str) -> str:
        if path == "slow":
            release.wait(WAIT * 2)
        return f"size of {path}"

    tracker: Background[str, str] = Background(measure, lambda known, path: True, name="test-bg", refresh=3600)
    try:
        assert tracker.lookup(["fast", "slow"], same) == {"fast": None, "slow": None}  # a listing queues both
        assert within(tracker.wait_for, ["fast"], same) == {"fast": "size of fast"}  # while "slow" is measured
        assert tracker.lookup(["slow"], same) == {"slow": None}
        release.set()
        assert within(tracker.wait_for, ["slow"], same) == {"slow": "size of slow"}
    finally:
        release.set()
        tracker.stop()


def test_a_failed_measure_is_tried_again_only_when_due():
    """Broken by: an env whose measure failed, with nothing known, measured again on every listing (a walk per
    listing) instead of once ``refresh`` seconds have passed."""
    calls: list[str] = []

    def measure(path: str) -> str:
        calls.append(path)
        raise OSError(f"cannot read {path}")

    tracker: Background[str, str] = Background(measure, lambda known, path: True, name="test-bg", refresh=3600)
    try:
        assert within(tracker.wait_for, ["bad"], same) == {}
        assert tracker.lookup(["bad"], same) == {"bad": None}  # a listing: not due again yet
        assert within(tracker.wait_for, ["bad"], same) == {}
        assert calls == ["bad"]
        tracker.refresh = 0  # due now
        assert within(tracker.wait_for, ["bad"], same) == {}
        assert calls == ["bad", "bad"]
    finally:
        tracker.stop()


def test_a_file_met_while_being_written_is_measured_again(tmp_path: Path):
    """Broken by: a size trusted while its directories keep their mtimes, when the walk met a file created and not
    yet written (an install in progress). Writing its content moves no directory's mtime, so the env kept the size
    of the empty file for good (a CI run's listings showed a layer's old size for 60 s)."""
    env = tmp_path / "env"
    env.mkdir()
    tracker = SizeTracker(refresh=0)
    try:
        with open(env / "wheel.bin", "wb") as being_written:
            early = within(tracker.measured, [str(env)])[str(env)]  # the walk meets the empty file
            being_written.write(b"y" * 100_000)
        assert not early.settled
        measured = within(tracker.measured, [str(env)])[str(env)]
        assert measured.size_bytes == sizing.measure(str(env)).size_bytes > early.size_bytes
    finally:
        tracker.stop()


def test_a_settled_size_is_trusted_until_a_directory_changes(tmp_path: Path):
    """Broken by: every size walked again when due (no cache), or a settled size kept after a change."""
    env = tmp_path / "env"
    (env / "pkg").mkdir(parents=True)
    (env / "pkg" / "data").write_bytes(b"x" * 100_000)
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.1)  # older than the racy window: nothing can still be being written
    tracker = SizeTracker(refresh=0)
    try:
        first = within(tracker.measured, [str(env)])[str(env)]
        assert first.settled
        assert within(tracker.measured, [str(env)])[str(env)] is first  # checked, not walked again
        (env / "pkg" / "more").write_bytes(b"x" * 100_000)
        grown = within(tracker.measured, [str(env)])[str(env)]
        assert grown.size_bytes > first.size_bytes and not grown.settled
    finally:
        tracker.stop()
