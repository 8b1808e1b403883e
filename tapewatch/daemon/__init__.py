"""The scheduler daemon (``tapewatch run``): the scheduler, its jobs, their supervision and the daemon lease."""

from tapewatch.daemon.core import Daemon, current, run_job
from tapewatch.daemon.scheduler import JOBSTORE_TABLE, SCHEDULED_FOR, next_runs
from tapewatch.daemon.specs import JOB_IDS, JobSpec, job_specs

__all__ = ["JOBSTORE_TABLE", "JOB_IDS", "SCHEDULED_FOR", "Daemon", "JobSpec", "current", "job_specs", "next_runs",
           "run_job"]
