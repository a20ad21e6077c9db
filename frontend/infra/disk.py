"""The data folder's disk: new jobs are refused, and queued ones wait, while its free space is below the floor
(``VISUALIZR_MIN_FREE_DISK_MB``), so a full disk stops work before any GPU time is spent on it."""

from __future__ import annotations

import shutil
from pathlib import Path

from visualizr.frontend.errors import InsufficientStorageError

MIB = 1024 * 1024


class DiskGuard:
    def __init__(self, data_dir: Path, min_free_mb: int) -> None:
        self.data_dir = Path(data_dir)
        self.floor_bytes = max(0, int(min_free_mb)) * MIB

    def free_bytes(self) -> int:
        probe = self.data_dir if self.data_dir.exists() else self.data_dir.parent
        return shutil.disk_usage(probe).free

    def shortage(self) -> str | None:
        """Why there is not enough room (None when there is). Blocking (one statvfs): cheap, called inline."""
        try:
            free = self.free_bytes()
        except OSError as exc:
            return f"the data folder {self.data_dir} cannot be read: {exc}"
        if free < self.floor_bytes:
            return (
                f"only {free / MIB:.0f} MB free on the data folder's disk, "
                f"below the floor of {self.floor_bytes / MIB:.0f} MB"
            )
        return None

    def check(self) -> None:
        """INSUFFICIENT_STORAGE when the disk is below the floor."""
        reason = self.shortage()
        if reason is not None:
            raise InsufficientStorageError(
                f"Not enough free disk space to accept a job: {reason}",
                {"data_dir": str(self.data_dir), "min_free_mb": self.floor_bytes // MIB, "reason": reason},
            )


class DataDirError(RuntimeError):
    """The data folder cannot be used (it is a file, read-only, on a full disk ...); the message says which."""


def unusable(path: Path, what: str, exc: BaseException) -> DataDirError:
    """A DataDirError naming ``path`` and why it cannot be used, in one line."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "it (or a folder above it) is a file, not a folder"
    else:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return DataDirError(f"the {what} {path} is not usable: {reason} (set VISUALIZR_DATA_DIR to a writable folder)")


def prepare_data_dir(data_dir: Path, *folders: Path) -> None:
    """Create the data folder (and ``folders``) and prove it writable; DataDirError with one clear line if not."""
    try:
        for folder in (data_dir, *folders):
            folder.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise unusable(data_dir, "data folder", exc) from None
