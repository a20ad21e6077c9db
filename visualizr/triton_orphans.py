"""Leftovers of a tritonserver of ours that died without cleaning up: Python-backend stubs whose server is gone
(each keeps its model in memory, hundreds of MB) and their shared-memory regions in /dev/shm.

A stub's command line names its shm region and its server's pid (:mod:`visualizr.stubs`); the launcher names
every region ``visualizr_<grpc port>_<uuid>`` (TritonServer.shm_region_prefix). Only stubs that carry our prefix,
belong to our user and whose parent is gone are ever signalled.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from visualizr import process_tree
from visualizr.process_tree import ProcessInfo
from visualizr.stubs import STUB_NAME, STUB_PARENT_ARG, STUB_REGION_ARG, is_stub

logger = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
TRITON_PROGRAMS = ("tritonserver", STUB_NAME)


def is_orphaned_stub(info: ProcessInfo, region_prefix: str, parent: ProcessInfo | None, uid: int) -> bool:
    """A stub of a server of ours (the region prefix and our uid) whose server has died: the stub was
    re-parented, or the server pid it names no longer exists or is a zombie."""
    argv = info.argv
    if info.uid != uid or not is_stub(info):
        return False
    if not argv[STUB_REGION_ARG].startswith(region_prefix) or not argv[STUB_PARENT_ARG].isdigit():
        return False
    server_pid = int(argv[STUB_PARENT_ARG])
    return info.ppid != server_pid or parent is None or parent.state == "Z"


def _orphaned(info: ProcessInfo, region_prefix: str) -> bool:
    parent_pid = info.argv[STUB_PARENT_ARG] if len(info.argv) > STUB_PARENT_ARG else ""
    parent = process_tree.read_process(int(parent_pid)) if parent_pid.isdigit() else None
    return is_orphaned_stub(info, region_prefix, parent, os.getuid())


def kill_orphaned_stubs(region_prefix: str, timeout_s: float = 10.0) -> list[int]:
    """SIGKILL every orphaned stub of ours (re-checked through a pidfd right before the signal) and wait for
    them to vanish. Returns their pids."""
    killed = [
        info.pid
        for info in process_tree.processes()
        if _orphaned(info, region_prefix)
        and process_tree.signal_if(info.pid, signal.SIGKILL, lambda now: _orphaned(now, region_prefix))
    ]
    if killed:
        logger.warning("killed %d Python-backend stub(s) orphaned by an earlier tritonserver: %s", len(killed), killed)
        if not process_tree.wait_gone(killed, timeout_s):
            logger.warning("orphaned stubs %s still exist after SIGKILL", killed)
    return killed


def _mapped_paths() -> set[str] | None:
    """Every file any process maps, or None when a Triton process's maps cannot be read (then nothing is
    provably unused). Other processes we may not inspect (init, say) cannot be using Triton's regions."""
    mapped: set[str] = set()
    for entry in process_tree.PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            maps = (entry / "maps").read_text(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        except OSError:
            info = process_tree.read_process(int(entry.name))
            if info is not None and info.argv and Path(info.argv[0]).name in TRITON_PROGRAMS:
                return None
            continue
        for line in maps.splitlines():
            fields = line.split(maxsplit=5)  # address perms offset dev inode [path]
            if len(fields) == 6:
                mapped.add(fields[5])
    return mapped


def remove_stale_shm_regions(region_prefix: str, shm_dir: Path = SHM_DIR) -> list[Path]:
    """Unlink our shared-memory regions that no process maps any more (a SIGKILLed server leaves some)."""
    candidates = [p for p in shm_dir.glob(f"{region_prefix}*") if p.is_file() and p.stat().st_uid == os.getuid()]
    if not candidates or (mapped := _mapped_paths()) is None:
        return []
    removed = []
    for path in candidates:
        if str(path) not in mapped:
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        logger.info("removed %d stale shared-memory region(s) %s*", len(removed), shm_dir / region_prefix)
    return removed
