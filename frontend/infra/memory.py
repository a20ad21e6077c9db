"""Large buffers go back to the kernel when freed, so the API's memory stays flat under bursts of uploads.

glibc serves allocations above ``M_MMAP_THRESHOLD`` with their own mapping, unmapped on free; but by default the
threshold rises (up to 32 MB) each time such a buffer is freed, after which decoded images (Pillow allocates them
in 16 MB blocks) come from the per-thread heaps, which keep freed memory: six concurrent 16-Mpx PNG uploads then
raised the API's peak RSS by 184-257 MB from run to run instead of a steady ~150 MB (benchmarks.upload_memory).
Setting the threshold fixes it (no more rising). Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_frees_to_the_os() -> bool:
    """Fix glibc's mmap threshold at 1 MB; False where that is not glibc or the call is refused."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
