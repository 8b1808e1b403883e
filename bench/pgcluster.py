"""A throwaway PostgreSQL cluster for the benches, started and stopped by .ci/postgres.sh (as the tests' is)."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "postgres.sh"


@contextmanager
def throwaway_postgres() -> Iterator[tuple[str | None, str]]:
    """(SQLAlchemy URL, PostgreSQL version) of a new local cluster, or (None, why not) when none can start."""
    # Under the temp dir itself: the cluster's owner (an unprivileged user when we are root) must reach it.
    directory = Path(tempfile.gettempdir()) / f"tapewatch-bench-pg-{uuid.uuid4().hex[:10]}"
    started = subprocess.run(["bash", str(SCRIPT), "start", str(directory)], capture_output=True, text=True,
                             timeout=180)
    if started.returncode != 0:
        yield None, (started.stderr.strip().splitlines() or ["postgres.sh start failed"])[-1]
        return
    version = subprocess.run(["bash", "-c", f'"$(bash {SCRIPT} bindir)/postgres" --version'],
                             capture_output=True, text=True).stdout.strip()
    try:
        yield started.stdout.strip().splitlines()[-1], version
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], capture_output=True, timeout=120)
