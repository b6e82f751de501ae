"""Job records and logs on disk: ``<id>.json`` + ``<id>.log`` in a directory under the user's Jupyter data dir.

A reopened panel finds a running job here, and recovery (the server's next start, or another server sharing this
directory) finds the jobs a dead server left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIVE = ("queued", "running")
JOB_ID = re.compile(r"[0-9a-f]{32}")
LOG_TAIL_LINES = 8


@dataclass
class Job:
    id: str
    name: str
    path: str
    base: str
    user: str
    plan: dict[str, Any]
    state: str = "queued"
    step: str = "queued"
    progress: float = 0.0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    environment: dict[str, Any] | None = None
    error: str | None = None
    pid: int | None = None

    def public(self) -> dict[str, Any]:
        """The job JSON of the REST contract (and a few fields a panel needs to show it)."""
        then = self.plan.get("then")  # a base built for an environment.yml: the layer's job, once queued
        chained = {"then": {"name": then.get("name"), "job": self.plan.get("next_job"),
                            "error": self.plan.get("then_error")}} if then else {}  # fmt: skip
        return {
            **chained,
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "base": self.base,
            "state": self.state,
            "step": self.step,
            "progress": round(self.progress, 3),
            "created": self.created,
            "finished": self.finished,
            "environment": self.environment,
            "error": self.error,
            "action": self.plan.get("action", "create"),  # create, or a layer's change or restore
            **({"unchanged": True} if self.plan.get("unchanged") else {}),  # a change that found all there already
        }


class JobStore:
    """Job records and logs on disk. Blocking: call from a thread."""

    def __init__(self, directory: str, keep: int = 100) -> None:
        self.directory = directory
        self.keep = keep

    def _file(self, job_id: str, suffix: str) -> str:
        if not JOB_ID.fullmatch(job_id):
            raise KeyError(job_id)
        return os.path.join(self.directory, f"{job_id}{suffix}")

    def log_path(self, job_id: str) -> str:
        return self._file(job_id, ".log")

    def requirements_path(self, job_id: str) -> str:
        return self._file(job_id, ".requirements.txt")

    def work_dir(self, job_id: str) -> str:
        """Scratch files of a job's resolver (requests, constraints, stub wheels); removed when it ends."""
        path = self._file(job_id, ".work")
        os.makedirs(path, exist_ok=True)
        return path

    def save(self, job: Job) -> None:
        os.makedirs(self.directory, exist_ok=True)
        path = self._file(job.id, ".json")
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(job), handle)
        os.replace(tmp, path)

    def load(self, job_id: str) -> Job | None:
        try:
            with open(self._file(job_id, ".json"), encoding="utf-8") as handle:
                return Job(**json.load(handle))
        except (KeyError, OSError, ValueError, TypeError):
            return None

    def load_all(self) -> list[Job]:
        names = (
            [n[:-5] for n in os.listdir(self.directory) if n.endswith(".json")] if os.path.isdir(self.directory) else []
        )
        jobs = [job for name in names if JOB_ID.fullmatch(name) and (job := self.load(name))]
        return sorted(jobs, key=lambda job: job.created, reverse=True)

    def append_log(self, job_id: str, text: str) -> None:
        with open(self.log_path(job_id), "a", encoding="utf-8") as handle:
            handle.write(text)

    def read_log(self, job_id: str, offset: int) -> bytes:
        with open(self.log_path(job_id), "rb") as handle:
            handle.seek(offset)
            return handle.read()

    def log_size(self, job_id: str) -> int:
        try:
            return os.path.getsize(self.log_path(job_id))
        except OSError:
            return 0

    def log_tail(self, job_id: str, offset: int) -> str:
        """The last lines a command wrote, from ``offset`` (where its output began)."""
        try:
            text = self.read_log(job_id, offset).decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def prune(self) -> None:
        """Forget the oldest finished jobs beyond ``keep``."""
        finished = [job for job in self.load_all() if job.state not in ACTIVE]
        for job in finished[self.keep :]:
            for suffix in (".json", ".log", ".requirements.txt"):
                with contextlib.suppress(OSError):
                    os.unlink(self._file(job.id, suffix))
