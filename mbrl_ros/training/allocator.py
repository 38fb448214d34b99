"""Keep freed memory in the process (glibc malloc settings) so training does not page-fault.

Why: a training step allocates and frees the same large tensors every time (a batch of 256
64x64 images as float32 is 12.6 MB; the first conv's activations 16 MB). glibc serves blocks
above its mmap threshold (128 KB at start, adapting up to 32 MB) with fresh mmap()s and
returns them at free(), so each step touches hundreds of MB of new zero-filled pages: page
faults that cost as much as a fair share of the arithmetic on a small CPU. With the mmap
threshold at its 32 MB maximum and trimming off, the heap keeps those blocks and reuses them.
Same computation, same results; the process holds on to its peak heap instead of returning it.
Measured in docs/world_model.md (benchmarks/bench_training.py --speed). Linux/glibc only;
elsewhere a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
GLIBC_DEFAULT = 128 * 1024

_applied = None


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def keep_freed_memory(enabled: bool = True) -> bool:
    """Apply (or, with enabled=False, undo to glibc's start values) the settings above.
    Returns whether they could be applied (False off glibc)."""
    global _applied
    libc = _libc()
    if libc is None:
        return False
    mmap, trim = (MMAP_THRESHOLD_MAX, 1 << 30) if enabled else (GLIBC_DEFAULT, GLIBC_DEFAULT)
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    _applied = enabled if ok else None
    return ok


def applied() -> bool:
    return bool(_applied)
