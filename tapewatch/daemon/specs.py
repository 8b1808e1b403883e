"""The recurring ingest jobs of the daemon, as the settings call for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tapewatch.jobs import Runtime, market_coins, x_specs


@dataclass(frozen=True)
class JobSpec:
    """One recurring job of this module: ``run_job(kind)`` every ``interval``."""

    id: str
    kind: str
    interval: timedelta
    name: str


# The job ids this module owns; a job of ours that is no longer configured is removed on start.
JOB_IDS = {"feeds": "ingest-feeds", "x": "ingest-x", "prices": "ingest-prices", "retention": "retention",
           "x_deletions": "x-deletions"}


def job_specs(runtime: Runtime) -> list[JobSpec]:
    """The jobs the settings call for: a source with nothing configured gets no job."""
    s = runtime.settings
    specs = []
    if any(f.enabled for f in s.feeds):
        specs.append(JobSpec(JOB_IDS["feeds"], "feeds", s.fetch.interval, "ingest feeds"))
    if s.x_bearer_token is not None and x_specs(s) and s.x.monthly_read_budget > 0:
        specs.append(JobSpec(JOB_IDS["x"], "x", s.x.interval, "ingest X"))
    if s.x_bearer_token is not None and s.x.monthly_read_budget > 0:
        # X's rules: what X deleted is deleted here too, whether or not anything is still being read.
        specs.append(JobSpec(JOB_IDS["x_deletions"], "x_deletions", s.x.compliance_every, "X deletion check"))
    if s.market.enabled and market_coins(s)[0]:
        specs.append(JobSpec(JOB_IDS["prices"], "prices", s.market.interval, "ingest prices"))
    specs.append(JobSpec(JOB_IDS["retention"], "retention", s.daemon.retention_interval, "retention"))
    return specs
