"""Triton's Python-backend stubs as /proc shows them, and a watch that notices one dying.

A stub is ``triton_python_backend_stub <model.py> <shm region> <shm size> <growth> <parent pid> ...`` with
``model.py`` at ``<repository>/<model>/<version>/model.py``, a child of its tritonserver. One that dies stays a
zombie child of the server (Triton reaps it only when it next uses that model), and its argv is gone by then, so
the watch learns each live stub's model beforehand. A stub Triton stopped itself (an unload, a reload's old
instance) exits 0; one killed by a signal or exiting non-zero died, and Triton would keep listing its model READY
while every request to it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from visualizr import process_tree
from visualizr.process_tree import ProcessInfo

STUB_NAME = "triton_python_backend_stub"
STUB_MODEL_ARG = 1
STUB_REGION_ARG = 2
STUB_PARENT_ARG = 5
RESCAN_S = 1.0  # how often the server's children are listed anew (new stubs appear only when models load)


def is_stub(info: ProcessInfo) -> bool:
    return len(info.argv) > STUB_PARENT_ARG and Path(info.argv[0]).name == STUB_NAME


def model_of(info: ProcessInfo) -> str:
    """The Triton model the stub ``info`` serves."""
    return Path(info.argv[STUB_MODEL_ARG]).parent.parent.name


class DeadStub(msgspec.Struct, frozen=True):
    model: str
    pid: int
    exit_code: int  # negative: killed by that signal


class StubWatch:
    """The stubs of the tritonserver ``server_pid``: :meth:`poll` checks the known ones (a few /proc reads) and
    lists the server's children every ``rescan_s``."""

    def __init__(
        self, server_pid: int, rescan_s: float = RESCAN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.server_pid = server_pid
        self.rescan_s = rescan_s
        self._clock = clock
        self._models: dict[int, str] = {}  # live stub pid -> its model
        self._next_scan = clock()

    @property
    def stubs(self) -> dict[int, str]:
        """Live stub pid -> the model it serves, as last seen."""
        return dict(self._models)

    def poll(self) -> list[DeadStub]:
        """The stubs that died since the last poll."""
        dead = []
        for pid, model in list(self._models.items()):
            info = process_tree.read_process(pid)
            if info is None or info.ppid != self.server_pid:  # reaped: Triton stopped it (or reaped a death we missed)
                del self._models[pid]
            elif info.state == "Z":
                del self._models[pid]
                code = process_tree.zombie_exit_code(pid)
                if code is not None and code != 0:
                    dead.append(DeadStub(model, pid, code))
        if self._clock() >= self._next_scan:
            self._next_scan = self._clock() + self.rescan_s
            for info in process_tree.children(self.server_pid):
                if info.state != "Z" and is_stub(info):
                    self._models.setdefault(info.pid, model_of(info))
        return dead
