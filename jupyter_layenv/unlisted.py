"""Why an env a job has just built is not in the listing, and what to do: the last step of a create says so.

Discovery skips a prefix it cannot use with a reason of its own (a garbled ``pyvenv.cfg``, a dangling interpreter);
that reason is the cause to report, not the configuration of the roots, which is at fault only when discovery does
not look where the env was built at all.
"""

from __future__ import annotations

import os

from .model import Discovered


def unlisted_message(discovered: Discovered, path: str, job_id: str, *, installed_packages: bool) -> str:
    """The error of a job whose env ``path`` discovery does not list (REST words: the CLI's ``cli_words`` turns the
    log's address into "the log above"); ``installed_packages``: the job installed packages of its own into it."""
    log = f"the job's log (GET jobs/{job_id}/log)"
    reason = next((skipped.reason for skipped in discovered.skipped if skipped.path == path), None)
    if reason is None:
        return (
            f"{path} was built but discovery does not look in {os.path.dirname(path)}: add that directory to "
            "LayenvKernelSpecManager.venv_roots (envs_dirs for a Conda env), or check LayenvService.user_root"
        )
    if installed_packages:
        what = f"a package installed into it probably broke it: see the install step in {log}, leave that package out"
    else:
        what = f"nothing was installed into it, so something else changed it while it was built: see {log}"
    return f"{path} was built but is not listed: discovery skips it ({reason}); {what}"
