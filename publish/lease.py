"""One run at a time: a named lease row in the state DB with an owner and an expiry.

The owner records who holds it: host name, PID, a per-object token, and the process identity that
survives PID reuse — the kernel's boot id and the process's start time (``/proc/<pid>/stat``). A holder
that died (kill -9, a crash, a container whose PID 1 restarted) is taken over at once when it was on
this host in this boot and no process with its PID and start time exists any more; anything else (another
host, another boot, no /proc) keeps the lease until it expires. A live PID alone never proves the holder
lives: in a container every daemon is PID 1.

On every backend the row decides: a first holder inserts against the primary key (a racer that loses gets
an integrity error, i.e. ``False``), a takeover updates only where the owner is still the one it read, so
of any number of processes or hosts racing for the lease exactly one gets it (PostgreSQL at READ COMMITTED
re-checks that ``WHERE`` after waiting on the row).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory import schema

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as the kernel knows it: host, boot, PID and start time (clock ticks since boot)."""

    host: str
    pid: int
    boot: str = ""  # "" where the platform has no boot id
    start: str = ""  # "" where the platform has no /proc/<pid>/stat

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """The identity of process ``pid`` on this host (boot and start empty where unknown)."""
        return cls(socket.gethostname(), pid, boot_id(), start_time(pid) or "")

    @classmethod
    def parse(cls, owner: str) -> ProcessIdentity | None:
        """The identity recorded in a lease owner (``host:pid:token[:boot:start]``), None if unreadable."""
        parts = owner.split(":")
        if len(parts) < 3 or not parts[1].isdigit():
            return None
        boot, start = (parts[3], parts[4]) if len(parts) >= 5 else ("", "")
        return cls(parts[0], int(parts[1]), boot, start)

    def alive(self) -> bool | None:
        """True/False when this host can tell whether the process still runs, None when it cannot."""
        if self.host != socket.gethostname():
            return None  # another machine (or another container: its own hostname)
        here = boot_id()
        if self.boot and here:
            if self.boot != here:
                return None  # same name, another boot or another machine: wait for the lease to expire
            now = start_time(self.pid)
            return now is not None and now == self.start  # gone, or the PID now belongs to someone else
        # No boot id (not Linux, or a lease written by an older version): only a missing PID is conclusive.
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return None
        return None


def boot_id() -> str:
    """This kernel boot's id (``/proc/sys/kernel/random/boot_id``), or "" where there is none."""
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """Process ``pid``'s start time in clock ticks since boot, or None if there is no such process here."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5), counted from field 3


def describe_owner(owner: str) -> str:
    """A lease owner for people: "pid 1 on host"."""
    who = ProcessIdentity.parse(owner)
    return f"pid {who.pid} on {who.host}" if who else owner


class Lease:
    """A named lease; ``acquire`` before the work, ``renew`` as it goes on, ``release`` at the end."""

    def __init__(self, engine: Engine, ttl: timedelta, *, name: str = "publish",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.ttl = ttl
        self.name = name
        self.clock = clock
        me = ProcessIdentity.of(os.getpid())
        self.owner = f"{me.host}:{me.pid}:{uuid.uuid4().hex[:8]}:{me.boot}:{me.start}"

    def holder(self) -> tuple[str, datetime] | None:
        """Who holds the lease and until when, if anyone does."""
        p = schema.publish_lease
        with self.engine.connect() as conn:
            row = conn.execute(select(p.c.owner, p.c.expires_at).where(p.c.name == self.name)).first()
        return (row.owner, row.expires_at) if row else None

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, ours, or held by a process that no longer exists."""
        p = schema.publish_lease
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(p.c.owner, p.c.expires_at).where(p.c.name == self.name)).first()
                if row is None:
                    conn.execute(insert(p).values(name=self.name, owner=self.owner, expires_at=now + self.ttl))
                    return True
                if row.owner != self.owner and row.expires_at > now and not _dead(row.owner):
                    return False
                changed = conn.execute(update(p).where(p.c.name == self.name, p.c.owner == row.owner)
                                       .values(owner=self.owner, expires_at=now + self.ttl)).rowcount
                return changed == 1
        except IntegrityError:
            return False

    def renew(self) -> bool:
        """Push the expiry on; False if the lease is no longer ours (a database error propagates)."""
        p = schema.publish_lease
        with self.engine.begin() as conn:
            return conn.execute(update(p).where(p.c.name == self.name, p.c.owner == self.owner)
                                .values(expires_at=self.clock() + self.ttl)).rowcount == 1

    def release(self) -> None:
        """Give the lease up (only if it is ours)."""
        p = schema.publish_lease
        with self.engine.begin() as conn:
            conn.execute(delete(p).where(p.c.name == self.name, p.c.owner == self.owner))



def _dead(owner: str) -> bool:
    who = ProcessIdentity.parse(owner)
    return who is not None and who.alive() is False
