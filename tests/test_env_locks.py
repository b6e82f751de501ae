"""Per-env locks leave no file behind once released, and still exclude each other (real processes, real flock)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from jupyter_layenv.create.locks import LOCK_DIR, EnvLock

# Each worker takes and releases the lock as fast as it can; while it holds it, it makes a marker file that must not
# exist already (O_EXCL): two holders at once would find the other's marker.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from jupyter_layenv.create.locks import EnvLock
    env, marker, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    held = overlaps = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        lock = EnvLock.try_acquire(env, create=held % 2 == 0)
        if lock is None:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps += 1
        else:
            os.close(fd)
            held += 1
            os.unlink(marker)
        lock.release()
    print(held, overlaps)
    """
)


def test_a_released_lock_leaves_no_file_for_its_name(tmp_path: Path):
    for name in ("typo", "tpyo", "real"):
        lock = EnvLock.try_acquire(str(tmp_path / name))
        assert lock is not None
        assert (tmp_path / LOCK_DIR / f"{name}.lock").exists()  # there while held
        lock.release()
    assert os.listdir(tmp_path / LOCK_DIR) == []


def test_a_held_lock_excludes_others_and_a_released_one_does_not(tmp_path: Path):
    env = str(tmp_path / "one")
    held = EnvLock.try_acquire(env)
    assert held is not None
    assert EnvLock.try_acquire(env) is None
    assert EnvLock.try_acquire(env, create=False) is None
    held.release()
    again = EnvLock.try_acquire(env, create=False)  # an env locked before: taking it (to delete, say) excludes a build
    assert again is not None and again.fd is not None
    assert EnvLock.try_acquire(env) is None
    again.release()
    assert os.listdir(tmp_path / LOCK_DIR) == []


def test_processes_racing_on_one_name_never_hold_it_together(tmp_path: Path):
    env, marker = tmp_path / "raced", tmp_path / "holder"
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(env), str(marker), "3"], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [tuple(map(int, w.communicate(timeout=60)[0].split())) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert sum(overlaps for _, overlaps in results) == 0, results
    assert all(held > 0 for held, _ in results), results  # each really held it: they took turns (no rate asserted)
    assert os.listdir(tmp_path / LOCK_DIR) == []
