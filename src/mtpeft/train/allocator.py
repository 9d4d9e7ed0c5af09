"""Keep freed host memory in the process, so that every training step reuses the same pages.

glibc's ``malloc`` serves a block above its mmap threshold with a fresh ``mmap`` and unmaps it on
``free``; the threshold adapts up to 32 MB at most. A larger activation, such as BERT's attention
probabilities at batch 16 x 256 tokens (16 x 12 x 256 x 256 floats = 50 MB per layer), is therefore mapped,
zero-filled one 4 KB page fault at a time and unmapped again, at every step. Raising the mmap and trim
thresholds serves such blocks from the heap and keeps them there once freed.

Measured on MiniLM LoRA (3 steps, batch 16 x 256): 1.2 million page faults -> 37 thousand, the same
peak RSS. The setting is process-wide and cannot be undone; it is a no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
KEEP_BELOW_BYTES = 1 << 30
"""Blocks up to 1 GiB come from the heap; free memory at its top is returned only beyond 1 GiB."""


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; return whether both settings took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_set = mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES)
    trim_set = mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES)
    return bool(mmap_set and trim_set)
