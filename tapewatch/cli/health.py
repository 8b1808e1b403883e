"""``tapewatch health``: a cheap liveness check of the daemon for Docker's HEALTHCHECK (exit 0 healthy, 1 not)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from sources.errors import TapewatchError
from tapewatch.cli.root import app, out, settings
from tapewatch.settings import Settings, format_duration

# The name the daemon takes its lease under (tapewatch.daemon.Daemon).
DAEMON_LEASE = "daemon"


def daemon_problem(s: Settings, now: datetime | None = None) -> str | None:
    """Why the daemon is not healthy, or None: the state DB reads, its lease is current, no job is long overdue."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.engine import make_url

    from memory import schema
    from tapewatch.daemon import next_runs

    now = now or datetime.now(UTC)
    url = make_url(s.state_url)
    # Never create or migrate the DB from a health probe: that is the daemon's job, and it may be starting.
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        return f"no state database at {url.database} (has `tapewatch run` started?)"
    engine = create_engine(url, connect_args={"timeout": 5} if url.get_backend_name() == "sqlite" else {})
    try:
        lease = schema.publish_lease
        with engine.connect() as conn:
            row = conn.execute(select(lease.c.owner, lease.c.expires_at).where(lease.c.name == DAEMON_LEASE)).first()
        if row is None:
            return "no daemon holds the lease: `tapewatch run` is not running (or stopped)"
        if row.expires_at <= now:
            return (f"the daemon's lease ran out {format_duration((now - row.expires_at).total_seconds())} ago "
                    f"(held by {row.owner}): the daemon is hung or gone")
        late = [(job, when) for job, when in next_runs(engine).items()
                if when is not None and when < now - max(s.daemon.misfire_grace, timedelta(minutes=1))]
        if late:
            job, when = min(late, key=lambda j: j[1])
            return (f"job {job} is overdue by {format_duration((now - when).total_seconds())}: the scheduler "
                    "is not running jobs")
        return None
    except Exception as exc:  # any failure to read is unhealthy, and says why in one line
        return f"cannot read the state database: {' '.join(str(exc).split())[:300]}"
    finally:
        engine.dispose()


@app.command()
def health() -> None:
    """Exit 0 if the daemon is alive (state DB readable, daemon lease renewed, jobs on time), else 1 and why."""
    try:
        problem = daemon_problem(settings())
    except TapewatchError as exc:  # Docker reserves exit status 2: a broken config is simply unhealthy
        problem = str(exc)
    if problem is not None:
        out.print(f"unhealthy: {' '.join(problem.split())}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print("healthy", highlight=False)
