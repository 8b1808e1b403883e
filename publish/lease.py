"""One publish run at a time: a lease row in the state DB with an owner and an expiry.

A run that dies keeps its lease until it expires, unless the owner was a process on this host that no
longer exists (kill -9, a crash): then the next run may take it over at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from memory import schema


class Lease:
    """A named lease; ``acquire`` before publishing, ``renew`` as work goes on, ``release`` at the end."""

    def __init__(self, engine: Engine, ttl: timedelta, *, name: str = "publish",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.ttl = ttl
        self.name = name
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def holder(self) -> tuple[str, datetime] | None:
        """Who holds the lease and until when, if anyone does."""
        p = schema.publish_lease
        with self.engine.connect() as conn:
            row = conn.execute(select(p.c.owner, p.c.expires_at).where(p.c.name == self.name)).first()
        return (row.owner, row.expires_at) if row else None

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, ours, or held by a dead process on this host."""
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
        """Push the expiry on; False if the lease is no longer ours."""
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
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # ourselves, under another token: alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
