"""The audit trail: one jupyter_events schema for create, delete, export and cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCHEMA_ID = "https://events.jupyter.org/jupyter_layenv/action/v1"
SCHEMA_PATH = Path(__file__).with_name("action.yaml")


class Audit:
    """Emits through the server's event logger; without one (the CLI) it records nothing."""

    def __init__(self, event_logger: Any = None) -> None:
        self.event_logger = event_logger
        if event_logger is not None and SCHEMA_ID not in event_logger.schemas.schema_ids:
            event_logger.register_event_schema(SCHEMA_PATH)

    def emit(
        self, action: str, user: str, env: str, outcome: str, *, path: str | None = None, detail: str | None = None
    ) -> None:
        if self.event_logger is None:
            return
        data = {"action": action, "user": user, "env": env, "outcome": outcome, "path": path, "detail": detail}
        self.event_logger.emit(schema_id=SCHEMA_ID, data=data)
