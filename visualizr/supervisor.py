"""Keeps tritonserver running for `make serve`: starts it through :class:`~visualizr.launcher.TritonServer`,
restarts it with bounded exponential backoff whenever it exits (crash, SIGKILL, OOM), kills and reaps its whole
process tree each time, removes stubs orphaned by an earlier crash before each start, watches the running server's
Python-backend stubs (:class:`~visualizr.stubs.StubWatch`), and records its state, with the stubs that died, in a
small JSON file other processes read (:mod:`visualizr.supervisor_status`): the API heals what it reads there.

    supervisor = TritonSupervisor(Settings.from_env()).start()
    supervisor.wait_ready(timeout=300)
    ...
    supervisor.stop()
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec

from visualizr import process_tree, triton_orphans
from visualizr.backoff import ExponentialBackoff
from visualizr.launcher import TritonServer, TritonStartError
from visualizr.settings import Settings
from visualizr.stubs import StubWatch
from visualizr.supervisor_status import STUB_DEATHS_KEPT, StubDeath, SupervisorStatus, write_status

logger = logging.getLogger(__name__)

Outcome = Literal["exited", "not_ready", "requested", "stop"]
POLL_S = 0.2
LOG_TAIL_LINES = 20


class RestartBackoff(ExponentialBackoff, frozen=True):
    """Delay before restarting after consecutive failed runs; a run that stayed ready for ``stable_s`` counts as a
    fresh start."""

    stable_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartBackoff:
        return cls(
            settings.triton_restart_backoff_s, settings.triton_restart_backoff_max_s, settings.triton_restart_stable_s
        )

    def failures_after(self, failures: int, ready_for_s: float | None) -> int:
        """Consecutive failures counting the run that just ended, which was ready for ``ready_for_s`` (None:
        never ready)."""
        return 1 if ready_for_s is not None and ready_for_s >= self.stable_s else failures + 1


class RunEnd(msgspec.Struct, frozen=True):
    """How one tritonserver run ended: ``ready_for`` seconds ready (None: never); ``reason`` why we ended it
    (empty when it exited by itself)."""

    outcome: Outcome
    ready_for: float | None
    reason: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


class TritonSupervisor:
    """Runs tritonserver in a thread of its own (it must outlive the server: the launcher asks the kernel to
    SIGTERM tritonserver when the thread that started it ends). A server that exits before the first one was
    ever ready is a start-up error (:meth:`wait_ready` raises it); after that every exit is restarted."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: RestartBackoff | None = None,
        new_server: Callable[[], TritonServer] | None = None,
    ) -> None:
        self.settings = settings
        self.backoff = backoff or RestartBackoff.from_settings(settings)
        self.status_path = settings.supervisor_status_path
        self._new_server = new_server or (lambda: TritonServer(settings))
        self._no_restart = threading.Event()
        self._stop = threading.Event()
        self._restart_request: str | None = None  # guarded by _changed; only ever set while a server is ready
        self._changed = threading.Condition()
        self._status = SupervisorStatus(supervisor_pid=os.getpid(), state="starting")
        self._stub_deaths = 0
        self._failure: TritonStartError | None = None
        self._ever_ready = False
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> SupervisorStatus:
        return self._status

    def start(self) -> TritonSupervisor:
        if self._thread is None:
            self._update()
            self._thread = threading.Thread(target=self._run, name="triton-supervisor", daemon=True)
            self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until the current server is ready; raises the start-up error, or TritonStartError on timeout."""
        with self._changed:
            settled = self._changed.wait_for(lambda: self._status.state in ("ready", "stopped"), timeout)
        if self._status.state == "stopped":
            raise self._failure or TritonStartError("the Triton supervisor has stopped")
        if not settled:
            raise TritonStartError(f"tritonserver not ready after {timeout:.0f}s (state {self._status.state})")

    def request_restart(self, reason: str) -> bool:
        """Restart the ready tritonserver now (healing's last resort), counted as a restart. Dropped (False) while
        no server is ready, since a fresh one is already coming, or while a restart is already pending."""
        with self._changed:
            if self._status.state != "ready" or self._restart_request is not None:
                logger.info("restart request dropped (tritonserver %s): %s", self._status.state, reason)
                return False
            self._restart_request = reason
            return True

    def stop_restarting(self) -> None:
        """Whatever happens to tritonserver from now on, do not start it again (shutdown has begun)."""
        self._no_restart.set()

    def stop(self, timeout: float = 60.0) -> None:
        """No more restarts, then stop tritonserver and its process tree; returns once all are reaped."""
        self._no_restart.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> TritonSupervisor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ state transitions

    def _update(self, **changes: object) -> None:
        with self._changed:
            self._status = msgspec.structs.replace(self._status, updated_at=_now(), **changes)
            try:
                write_status(self.status_path, self._status)
            except OSError as exc:
                logger.warning("cannot write the supervisor status to %s: %s", self.status_path, exc)
            self._changed.notify_all()

    def _starting(self, pid: int) -> None:
        self._update(state="starting", pid=pid, started_at=_now(), ready_at=None, stub_deaths=())

    def _ready(self) -> None:
        self._ever_ready = True
        self._update(state="ready", ready_at=_now())

    def _exited(self, code: int | None) -> None:
        self._update(pid=None, last_exit_code=code, last_exit_at=_now())

    def _restarting(self, code: int | None, reason: str) -> None:
        with self._changed:  # a request about the server that just ended must not kill the next one
            self._restart_request = None
            self._update(
                state="restarting", restarts=self._status.restarts + 1, pid=None, last_exit_code=code,
                last_exit_at=_now(), last_restart_reason=reason,
            )  # fmt: skip

    def _stubs_died(self, watch: StubWatch) -> None:
        deaths = []
        for dead in watch.poll():
            self._stub_deaths += 1
            logger.warning(
                "the Python-backend stub of %s (pid %d) %s",
                dead.model,
                dead.pid,
                process_tree.describe_exit(dead.exit_code),
            )
            deaths.append(StubDeath(self._stub_deaths, dead.model, dead.pid, dead.exit_code, _now()))
        if deaths:
            self._update(stub_deaths=(*self._status.stub_deaths, *deaths)[-STUB_DEATHS_KEPT:])

    # ------------------------------------------------------------------ the supervision loop

    def _run(self) -> None:
        server: TritonServer | None = None
        failures = 0
        try:
            while not self._no_restart.is_set():
                server = self._launch()
                end = self._watch(server)
                if end.outcome == "stop":
                    break
                ended, server = server, None
                assert ended.process is not None
                pid = ended.process.pid
                code = ended.stop(timeout=15) if end.outcome in ("not_ready", "requested") else ended.reap()
                if not self._ever_ready:
                    self._exited(code)
                    raise TritonStartError(
                        f"tritonserver {process_tree.describe_exit(code)} before it was ready:\n"
                        f"{ended.log_tail(LOG_TAIL_LINES)}"
                    )
                if self._no_restart.is_set():
                    self._exited(code)
                    break
                failures = 0 if end.outcome == "requested" else self.backoff.failures_after(failures, end.ready_for)
                delay = self.backoff.delay(failures) if failures else 0.0
                logger.warning(
                    "tritonserver (pid %d) %s%s; restart %d in %.1f s. Log tail:\n%s",
                    pid, process_tree.describe_exit(code), f" ({end.reason})" if end.reason else "",
                    self._status.restarts + 1, delay, ended.log_tail(LOG_TAIL_LINES),
                )  # fmt: skip
                self._restarting(code, end.reason or f"tritonserver {process_tree.describe_exit(code)}")
                self._no_restart.wait(delay)
        except TritonStartError as exc:
            self._failure = exc
        except Exception as exc:  # never leave tritonserver running unsupervised
            logger.exception("the Triton supervisor failed")
            self._failure = TritonStartError(f"the Triton supervisor failed: {exc}")
        finally:
            if server is not None:
                self._exited(server.stop())
            self._update(state="stopped")

    def _launch(self) -> TritonServer:
        """Clear what an earlier crash of a server on our ports left behind, then start a new one."""
        server = self._new_server()
        triton_orphans.kill_orphaned_stubs(server.shm_region_prefix)
        triton_orphans.remove_stale_shm_regions(server.shm_region_prefix)
        server.start()
        assert server.process is not None
        self._starting(server.process.pid)
        return server

    def _take_restart_request(self) -> str | None:
        with self._changed:
            reason, self._restart_request = self._restart_request, None
            return reason

    def _watch(self, server: TritonServer) -> RunEnd:
        """Until tritonserver exits, misses its readiness deadline, a restart is requested or we stop; meanwhile
        its stubs are watched."""
        assert server.process is not None
        deadline = time.monotonic() + self.settings.triton_ready_timeout_s
        ready_since: float | None = None
        stubs = StubWatch(server.process.pid)

        def ready_for() -> float | None:
            return None if ready_since is None else time.monotonic() - ready_since

        while not self._stop.is_set():
            if server.exit_code() is not None:
                return RunEnd("exited", ready_for())
            if (requested := self._take_restart_request()) is not None:
                return RunEnd("requested", ready_for(), f"restart requested: {requested}")
            if ready_since is None:
                if server.is_ready():
                    ready_since = time.monotonic()
                    self._ready()
                elif time.monotonic() > deadline:
                    return RunEnd(
                        "not_ready", None, f"killed: not ready after {self.settings.triton_ready_timeout_s} s"
                    )
            self._stubs_died(stubs)
            self._stop.wait(POLL_S)
        return RunEnd("stop", ready_for())
