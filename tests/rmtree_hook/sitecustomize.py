"""Test-only (on a process's PYTHONPATH): watch and hold the ``shutil.rmtree`` calls that delete environments.

An audit hook (PEP 578; shutil.rmtree raises the ``shutil.rmtree`` event before removing anything) appends, for
each rmtree of a path under ``LAYENV_TEST_RMTREE_UNDER``, ``{"path", "siblings"}`` (what its directory held at
that moment) as a JSON line to ``LAYENV_TEST_RMTREE_RECORD``; then, while the file ``LAYENV_TEST_RMTREE_HOLD``
exists, it waits (at most a minute). So a test sees where a delete stands between its rename and its removal,
and can look at the other servers' listings in that window, without any hook in the product.

``LAYENV_TEST_RMTREE_EVENT=open`` watches and holds the opening of a file under ``LAYENV_TEST_RMTREE_UNDER``
(or of that very file) instead (``os.open`` raises the ``open`` event too): a listing held while it reads an env.
"""

import json
import os
import sys
import time

_RECORD = os.environ.get("LAYENV_TEST_RMTREE_RECORD")
_UNDER = os.environ.get("LAYENV_TEST_RMTREE_UNDER", "")
_HOLD = os.environ.get("LAYENV_TEST_RMTREE_HOLD")
_EVENT = os.environ.get("LAYENV_TEST_RMTREE_EVENT", "shutil.rmtree")


def _hook(event: str, args: tuple) -> None:
    if event != _EVENT or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if not _UNDER or (path != _UNDER and not path.startswith(_UNDER.rstrip(os.sep) + os.sep)):
        return
    siblings = sorted(os.listdir(os.path.dirname(path)))
    with open(_RECORD, "a", encoding="utf-8") as out:
        out.write(json.dumps({"path": path, "siblings": siblings}) + "\n")
    deadline = time.monotonic() + 60
    while _HOLD and os.path.exists(_HOLD) and time.monotonic() < deadline:
        time.sleep(0.05)


if _RECORD:
    sys.addaudithook(_hook)
