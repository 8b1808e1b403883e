"""A child process's own peak resident memory, measured so that the parent's size does not leak into it.

``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read in a large process is not the child's peak: Linux records the
resident size of the address space a child replaces at exec, which after fork (or vfork) is the parent's. A
bench that held 100k vectors when it launched `tapewatch ingest` read 780 MB for a process that never passed
401 MB (sampled from /proc); a 626 MB process launching /bin/true reads 626 MB. So the command runs under a
small launcher, and the launcher reads its own children's peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# Runs the command, then writes its exit status and ru_maxrss (KiB on Linux) as JSON to the file named first.
_LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[2:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(json.dumps({'returncode': done.returncode, 'maxrss_kib': peak}))\n"
)


def run_with_peak_rss(command: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 1800,
                      cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` (output captured) and return it with its own peak RSS in MB."""
    with tempfile.TemporaryDirectory(prefix="tapewatch-rss-") as tmp:
        report = Path(tmp) / "peak.json"
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(report), *command], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if not report.is_file():
            raise RuntimeError(f"the launcher wrote no figure (exit {done.returncode}): {done.stderr[-2000:]}")
        figures = json.loads(report.read_text())
    return (subprocess.CompletedProcess(command, figures["returncode"], done.stdout, done.stderr),
            figures["maxrss_kib"] / 1024)
