"""Which devices let discovery answer "writable" from a directory's mode bits instead of asking access(2)."""

from __future__ import annotations

import os
from pathlib import Path

from envtree import make_venv

from jupyter_layenv.locators.prefix import inspect_prefix
from jupyter_layenv.mounts import parse_mountinfo
from jupyter_layenv.probe import _local_devices, read_write_local_devices

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
30 27 8:1 / / rw,relatime - ext4 /dev/sda1 rw
31 30 8:2 / /data rw,relatime - xfs /dev/sda2 rw
32 30 8:2 /shared /srv/shared ro,relatime - xfs /dev/sda2 rw
33 30 8:3 / /mnt/ro rw,relatime - ext4 /dev/sda3 ro
34 30 0:50 / /nfs rw,relatime - nfs4 server:/export rw
"""


def test_a_device_mounted_read_only_anywhere_is_not_read_write():
    """Broken by: counting a device read-write when a bind mount (or its superblock) makes it read-only there, so
    an env seen through that mount would be called writable without asking access(2)."""
    local, read_write = _local_devices(parse_mountinfo(MOUNTINFO))
    assert local == {os.makedev(8, 1), os.makedev(8, 2), os.makedev(8, 3)}  # proc and nfs4 are not local disks
    assert read_write == {os.makedev(8, 1)}  # 8:2 has a read-only bind mount, 8:3 a read-only superblock


def test_writable_from_the_mode_bits_agrees_with_access(tmp_path: Path):
    """Broken by: answering "writable" from the owner's write bit where access(2) says otherwise (or the reverse)."""
    env = make_venv(tmp_path / "env", tool="uv")
    assert os.stat(env).st_dev in read_write_local_devices()  # the test's tmp dir is on a local disk, read-write
    for mode in (0o755, 0o555):
        env.chmod(mode)
        try:
            assert inspect_prefix(str(env)).writable == os.access(env, os.W_OK), oct(mode)
        finally:
            env.chmod(0o755)
