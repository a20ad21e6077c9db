"""The file in which `make serve`'s Triton supervisor records its state, ``<data dir>/run/triton-supervisor.json``
(``Settings.supervisor_status_path``): written by :class:`~visualizr.supervisor.TritonSupervisor`, read by the API
(health, metrics, and the healing of stubs that died) and by anyone else who asks."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from visualizr import process_tree

SupervisorState = Literal["starting", "ready", "restarting", "stopped"]
STUB_DEATHS_KEPT = 32


class StubDeath(msgspec.Struct, frozen=True):
    """A Python-backend stub of the running tritonserver that died. ``seq`` counts deaths over the supervisor's
    life, so a reader handles each one once."""

    seq: int
    model: str
    pid: int
    exit_code: int  # negative: killed by that signal
    at: datetime


class SupervisorStatus(msgspec.Struct, frozen=True):
    """The supervisor's state. ``pid`` is tritonserver's (None while none runs); ``last_exit_code`` is negative
    when a signal killed it (-9: SIGKILL); ``last_restart_reason`` says why the last restart happened;
    ``stub_deaths`` are the running server's (the latest ``STUB_DEATHS_KEPT``)."""

    supervisor_pid: int
    state: SupervisorState
    restarts: int = 0
    pid: int | None = None
    last_exit_code: int | None = None
    last_exit_at: datetime | None = None
    last_restart_reason: str | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    updated_at: datetime | None = None
    stub_deaths: tuple[StubDeath, ...] = ()

    def supervisor_alive(self) -> bool:
        """False when the supervising process is gone, so the file describes a past run."""
        info = process_tree.read_process(self.supervisor_pid)
        return info is not None and info.state != "Z"


def write_status(path: Path, status: SupervisorStatus) -> None:
    """Replace the file atomically: a reader sees the old or the new status, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_bytes(msgspec.json.encode(status))
    os.replace(staging, path)


def read_supervisor_status(path: Path) -> SupervisorStatus | None:
    """The status a supervisor last recorded, or None when there is no (readable) file."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=SupervisorStatus)
    except (OSError, msgspec.DecodeError):
        return None
