"""Native memory: glibc hands back what worker threads freed after a batch, and the bench reads a child's own peak."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bench.rss import run_with_peak_rss

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc's malloc are Linux's")


@LINUX
def test_release_returns_what_a_worker_thread_freed() -> None:
    # A worker thread fills its own malloc arena with 1 MB chunks (below the mmap threshold once it has grown,
    # as onnxruntime's and Chroma's threads do), frees them, and keeps one live chunk on top: glibc keeps the
    # freed memory resident until malloc_trim.
    script = textwrap.dedent("""
        import ctypes, threading
        from pathlib import Path
        from memory import heap
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        libc.mallopt(-3, 64 * 1024 * 1024)  # M_MMAP_THRESHOLD: heap chunks, as after glibc's dynamic raise
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD: no automatic trim on free
        def rss():
            line = [x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS")][0]
            return int(line.split()[1]) // 1024
        keep = []
        def work():
            chunks = [libc.malloc(1 << 20) for _ in range(200)]
            for c in chunks:
                ctypes.memset(c, 1, 1 << 20)
            keep.append(libc.malloc(64))
            for c in chunks:
                libc.free(c)
        t = threading.Thread(target=work); t.start(); t.join()
        before = rss()
        released = heap.release()
        print(released, before, rss())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    released, before, after = done.stdout.split()
    assert released == "True"
    assert int(before) >= 100 and int(after) < int(before) // 2, done.stdout


@LINUX
def test_cap_arenas_is_idempotent_and_says_whether_it_applied() -> None:
    from memory import heap

    assert heap.cap_arenas() is True and heap.cap_arenas() is True


@LINUX
def test_a_childs_peak_rss_is_its_own_not_its_parents() -> None:
    # This process holds ~300 MB; a child that never holds more than ~60 MB must not be reported at 300.
    ballast = bytearray(300 * 1024 * 1024)
    ballast[:: 4096] = b"\x01" * len(range(0, len(ballast), 4096))
    child = [sys.executable, "-c", "import numpy; a = numpy.ones(40 * 2**20 // 8); print(a.sum() > 0)"]
    done, peak = run_with_peak_rss(child)
    assert done.returncode == 0 and done.stdout.strip() == "True"
    assert 40 <= peak < 150, peak
    # Read the naive way, from this process, the same child "peaks" at this process's size.
    import resource

    subprocess.run(child, capture_output=True, check=True)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 >= 300
    del ballast
