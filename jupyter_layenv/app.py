"""The server extension: makes LayenvKernelSpecManager the server's kernel spec manager.

``pip install`` enables the extension through ``jupyter_server_config.d`` (the only key jupyter_server
reads there is ``jpserver_extensions``); its link hook runs before the server builds its kernel spec
manager, so that is where the class is set. An explicit choice by the administrator wins, with a warning.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.gateway.gateway_client import GatewayClient
from traitlets import Int

from .condabase import first_base_hint, has_conda_env
from .events import Audit
from .handlers import HANDLERS
from .identity import account_name
from .inuse import server_kernels
from .kernelspecs import LayenvKernelSpecManager
from .service import LayenvService

KSM_TRAIT = "kernel_spec_manager_class"
KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"  # jupyter_server's own events


def configured_kernel_spec_manager(serverapp: Any) -> tuple[str, Any] | None:
    """Where the config (files or command line) names a kernel spec manager class, and which."""
    config = serverapp.config
    for cls in type(serverapp).mro():
        section = cls.__name__
        if section in config and KSM_TRAIT in config[section]:
            return section, config[section][KSM_TRAIT]
    return None


def _class_name(value: Any) -> str:
    return value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"


def _is_layenv(value: Any) -> bool:
    if isinstance(value, str):
        return value.rsplit(".", 1)[-1] == LayenvKernelSpecManager.__name__ and value.startswith("jupyter_layenv")
    return isinstance(value, type) and issubclass(value, LayenvKernelSpecManager)


class LayenvExtension(ExtensionApp):
    name = "jupyter_layenv"
    load_other_extensions = True

    max_body_size = Int(
        1024 * 1024, config=True, help="Largest request body the layenv API accepts (bytes); larger ones get 413."
    )

    _takeover_blocked_by: str | None = None
    service: LayenvService | None = None

    def _link_jupyter_server_extension(self, serverapp: Any) -> None:
        super()._link_jupyter_server_extension(serverapp)
        configured = configured_kernel_spec_manager(serverapp)
        if configured and not _is_layenv(configured[1]):
            section, value = configured
            self._takeover_blocked_by = f"{section}.{KSM_TRAIT} = {_class_name(value)} in your Jupyter config"
        elif GatewayClient.instance(parent=serverapp).gateway_enabled:
            self._takeover_blocked_by = "a Jupyter gateway (GatewayClient.url), whose kernels are remote"
        elif not configured:
            serverapp.kernel_spec_manager_class = LayenvKernelSpecManager

    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        # both set by the time a linked extension is initialized (jupyter_server 2 always makes an event logger)
        assert serverapp is not None and serverapp.event_logger is not None
        events = serverapp.event_logger
        ksm = serverapp.kernel_spec_manager
        ours = ksm if isinstance(ksm, LayenvKernelSpecManager) else None
        listing_ksm = ours or LayenvKernelSpecManager(parent=serverapp)
        self.service = LayenvService(parent=self, ksm=listing_ksm, audit=Audit(events))
        self.settings.update({"layenv_service": self.service, "layenv_max_body_size": self.max_body_size})
        self.service.recover()  # before the server answers: no client sees a dead server's job as running
        kernels = serverapp.kernel_manager
        self.service.running_kernels = functools.partial(server_kernels, kernels, serverapp.session_manager)
        events.add_listener(schema_id=KERNEL_ACTIONS, listener=self._kernel_action)
        if ours:
            # Warm the discovery cache off the event loop so the first kernel listing is instant.
            threading.Thread(target=self._warm, args=(ours,), name="layenv-discovery", daemon=True).start()
            return
        cause = self._takeover_blocked_by or f"another kernel spec manager ({_class_name(type(ksm))})"
        self.log.warning(
            "jupyter_layenv: Conda envs and virtualenvs are NOT listed as kernels, because the kernel spec "
            "manager is %s, chosen by %s. To fix it, remove that setting (for nb_conda_kernels: "
            "`python -m nb_conda_kernels uninstall`), or set "
            "c.ServerApp.kernel_spec_manager_class = 'jupyter_layenv.LayenvKernelSpecManager'.",
            _class_name(type(ksm)),
            cause,
        )

    async def _kernel_action(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        """Every kernel the server starts (or restarts), whatever starts it: its env's ``last_used``."""
        if data.get("action") in ("start", "restart") and data.get("status") == "success" and self.service:
            await self.service.kernel_started(str(data.get("kernel_name") or ""), account_name())

    def _warm(self, ksm: LayenvKernelSpecManager) -> None:
        """Fill the discovery cache; on a machine with no Conda env yet, say in the log how to make a first base."""
        ksm.kernel_table()
        discovered, _ = ksm.current()
        if not has_conda_env(discovered):
            self.log.warning("jupyter_layenv: %s", first_base_hint("log"))

    def initialize_handlers(self) -> None:
        self.handlers.extend(HANDLERS)

    async def stop_extension(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service.ksm.close()  # discovery's change notifications: their thread and descriptors
