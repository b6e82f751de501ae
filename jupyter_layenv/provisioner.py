"""``layenv-provisioner``: the kernel provisioner every jupyter_layenv kernelspec names.

jupyter_client (>= 7) starts a kernel whose spec has ``metadata.kernel_provisioner`` through the provisioner
registered under that name (entry point group ``jupyter_client.kernel_provisioners``). This one is jupyter_client's
own ``LocalProvisioner`` that first reads the env again (:mod:`jupyter_layenv.relaunch`): a kernelspec synced for
nbconvert or papermill keeps starting the env as it is now, and a deleted or broken env fails the start with what
to do instead of "kernel died". Clients that ignore provisioners use the spec's plain ``argv``/``env``. Every
start (and restart) is recorded as the env's ``last_used``, as the server records the kernels it starts: a kernel
nbconvert or papermill starts is a use of its env too.

The failure is a tornado ``HTTPError``: jupyter_server's API handlers pass on the message of an ``HTTPError`` only
(anything else reaches JupyterLab as "Unhandled error"). jupyter_client itself depends on tornado, and this module
is an entry point jupyter_client loads, beside ``handlers.py``, not below it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_client.provisioning import LocalProvisioner
from tornado.web import HTTPError
from traitlets import Unicode

from .kernelstart import DirLock, EnvLocked, hold_for_start
from .relaunch import EnvUnusable, launch_now
from .usage.lastuse import record_start


class EnvironmentUnusable(HTTPError):
    """Why a kernel's environment cannot start now, as JupyterLab, nbconvert and papermill show it."""

    def __init__(self, message: str, *, gone: bool) -> None:
        super().__init__(410 if gone else 422, message, reason="Environment gone" if gone else "Environment unusable")

    def __str__(self) -> str:
        return self.get_message() or ""


class LayenvProvisioner(LocalProvisioner):  # type: ignore[misc]
    """A local kernel, its activation computed from the env's files at each start and restart."""

    env = Unicode("", config=True, help="The environment's path (from the kernelspec's provisioner config).")
    usage_root = Unicode(
        "", config=True, help="The group root a group env is in: where its members' kernel starts are recorded."
    )

    _starting: DirLock | None = None  # held from the look at the env until the kernel's process runs

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        spec = self.kernel_spec
        if not self.env or spec is None:
            return await super().pre_launch(**kwargs)
        try:
            self._starting = await asyncio.to_thread(hold_for_start, self.env)
        except EnvLocked:
            raise EnvironmentUnusable(
                f"environment {self.env} is being deleted; pick another kernel", gone=True
            ) from None
        try:
            try:
                argv, env = await asyncio.to_thread(launch_now, self.env, list(spec.argv), dict(spec.env))
            except EnvUnusable as err:
                raise EnvironmentUnusable(str(err), gone=err.gone) from None
            spec.argv, spec.env = argv, env  # new objects: the kernel spec manager's own spec stays as it was
            await asyncio.to_thread(self._record_start)
            return await super().pre_launch(**kwargs)
        except BaseException:
            self._release_start()
            raise

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        """The kernel's process; a delete of its env waits no longer once it runs (``inuse`` sees it then)."""
        try:
            return await super().launch_kernel(cmd, **kwargs)
        finally:
            self._release_start()

    def _release_start(self) -> None:
        if self._starting is not None:
            self._starting.release()
            self._starting = None

    def _record_start(self) -> None:
        try:
            record_start(self.env, self.usage_root or None)
        except OSError as err:  # a full disk or a read-only data dir must not keep the kernel from starting
            self.log.warning("jupyter_layenv: could not record the start of %s's kernel: %s", self.env, err)
