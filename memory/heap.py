"""The native heap after a large batch: glibc keeps what onnxruntime, tokenizers and Chroma freed unless asked.

Measured on `tapewatch ingest` of 5,000 items (bench/ingest.py): resident memory climbed from 290 MB (model loaded)
to 401 MB over the run. Each thread that allocates under contention gets its own malloc arena (onnxruntime's
intra-op pool, Chroma's runtime, the fetch pool), and freed chunks inside an arena stay resident until
``malloc_trim``. With the arenas capped and a trim after each stored batch the same run peaked at 349-375 MB.
Elsewhere than glibc (musl, macOS) both calls are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2  # one for the main thread, one shared by every worker thread
_capped = threading.Event()


@cache
def _glibc() -> Any | None:
    """glibc's handle when this process runs on glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):  # musl has neither gnu_get_libc_version nor malloc_trim
        return None


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc to ``arenas`` malloc arenas from now on (once per process); False where that is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    if not _capped.is_set():
        libc.mallopt(M_ARENA_MAX, arenas)
        _capped.set()
    return True


def release() -> bool:
    """Return the heap's free memory to the system (``malloc_trim``); False where that is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
