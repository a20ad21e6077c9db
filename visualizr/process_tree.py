"""Process-tree plumbing for supervising tritonserver (Linux ``/proc``): peek at a child's exit without reaping
it, kill and reap a whole process group, and signal a process only after re-checking, through a pidfd, that it
is still the one we mean.

A child that has exited but is not yet reaped (a zombie) keeps its pid, and with it its process-group id, from
being reused; so a group is killed while its leader is still a zombie, and only then reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    uid: int
    state: str  # one letter of /proc/<pid>/stat: R, S, D, Z, ...
    argv: tuple[str, ...]


def read_process(pid: int) -> ProcessInfo | None:
    """The process ``pid`` from /proc, or None when it does not exist (or vanished while being read)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw_argv = (PROC / str(pid) / "cmdline").read_bytes()
        uid = (PROC / str(pid)).stat().st_uid
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses, so split after the last ')'.
    state, ppid, pgid = stat[stat.rindex(")") + 2 :].split()[:3]
    argv = tuple(a.decode(errors="replace") for a in raw_argv.split(b"\0")[:-1])
    return ProcessInfo(pid, int(ppid), int(pgid), uid, state, argv)


def processes() -> Iterator[ProcessInfo]:
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (info := read_process(int(entry.name))) is not None:
            yield info


def group_members(pgid: int) -> list[ProcessInfo]:
    return [info for info in processes() if info.pgid == pgid]


def children(pid: int) -> list[ProcessInfo]:
    """The processes whose parent is ``pid``, zombies included."""
    return [info for info in processes() if info.ppid == pid]


def zombie_exit_code(pid: int) -> int | None:
    """How the zombie ``pid`` (exited, not yet reaped by its parent) ended, as Popen reports it (negative: killed
    by that signal); None when ``pid`` is not a zombie. /proc/<pid>/stat's last field holds its wait status."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] != "Z":
        return None
    status = int(fields[-1])
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def exit_code(pid: int) -> int | None:
    """The exit code of our child ``pid`` if it has exited (negative: killed by that signal, as Popen reports),
    else None. It does NOT reap the child, so its pid and process group stay reserved."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if result is None or result.si_pid == 0:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


def wait_exit(pid: int, timeout_s: float, poll_s: float = 0.05) -> int | None:
    """:func:`exit_code`, waiting up to ``timeout_s`` for the child to exit."""
    deadline = time.monotonic() + timeout_s
    while (code := exit_code(pid)) is None and time.monotonic() < deadline:
        time.sleep(poll_s)
    return code


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def kill_group(pgid: int) -> None:
    """SIGKILL every process of the group. The caller guarantees the group is its own (leader not reaped)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def reap_group(pgid: int, timeout_s: float = 10.0) -> bool:
    """Wait until no process of group ``pgid`` exists, reaping those that are our children (as a subreaper we
    inherit the orphans). True when the group is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-pgid, os.WNOHANG)[0] > 0:
                pass
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def signal_if(pid: int, sig: int, still_ours: Callable[[ProcessInfo], bool]) -> bool:
    """Send ``sig`` to ``pid`` only if ``still_ours`` accepts it, checked after a pidfd pins the process (so a
    recycled pid cannot receive it). True when the signal was sent."""
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        info = read_process(pid)
        if info is None or not still_ours(info):
            return False
        signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def wait_gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    """Wait until none of ``pids`` exists, reaping any that are our children. True when all are gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if all(read_process(pid) is None for pid in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def become_subreaper() -> None:
    """Orphaned descendants (the stubs of a dead tritonserver) are re-parented to this process, not to init,
    so :func:`reap_group` can reap them itself (and in a container where this process is PID 1 it must)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
