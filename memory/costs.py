"""The cost ledger: tokens and money each crew run spent, per agent and model, in the state database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from memory import schema
from memory.state import StateDB


@dataclass(frozen=True)
class CostEntry:
    """What one agent of one crew run used."""

    at: datetime
    run_id: str
    agent: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    status: str = "ok"  # ok | failed (a failed run's tokens were paid for too)
    draft_id: str | None = None


@dataclass(frozen=True)
class SpendRow:
    """Spend of one model on one UTC day."""

    day: date
    model: str
    runs: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


X_AGENT = "x"  # ledger rows of X's pay-per-use charges (posts created, posts read), beside the crew's LLM rows


class CostLedger:
    """Record crew spend and X charges, and add them up for budgets and reports."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def record(self, entries: Sequence[CostEntry]) -> None:
        """Store the entries of one run."""
        if not entries:
            return
        with self.state.engine.begin() as conn:
            conn.execute(insert(schema.cost_ledger), [
                {"at": e.at, "run_id": e.run_id, "draft_id": e.draft_id, "agent": e.agent, "model": e.model,
                 "calls": e.calls, "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens,
                 "cost_usd": e.cost_usd, "status": e.status}
                for e in entries
            ])

    def attach(self, run_id: str, draft_id: str) -> None:
        """Link a run's entries to the draft it produced."""
        c = schema.cost_ledger
        with self.state.engine.begin() as conn:
            conn.execute(update(c).where(c.c.run_id == run_id).values(draft_id=draft_id))

    def record_x(self, at: datetime, kind: str, count: int, cost_usd: float, *, draft_id: str | None = None,
                 ref: str = "") -> None:
        """One X charge: ``kind`` is "post", "post_url" or "read"; ``count`` posts; ``ref`` ties it to a part."""
        self.record([CostEntry(at=at, run_id=ref or f"x-{kind}", agent=X_AGENT, model=f"x {kind.replace('_', '+')}",
                               calls=count, prompt_tokens=0, completion_tokens=0, cost_usd=cost_usd,
                               draft_id=draft_id)])

    def spent(self, since: datetime, until: datetime | None = None, *, service: str = "llm") -> float:
        """USD spent in [since, until) on the LLM ("llm"), on X ("x") or on both ("all")."""
        c = schema.cost_ledger
        q = select(func.coalesce(func.sum(c.c.cost_usd), 0.0)).where(c.c.at >= since)
        if service == "llm":
            q = q.where(c.c.agent != X_AGENT)
        elif service == "x":
            q = q.where(c.c.agent == X_AGENT)
        if until is not None:
            q = q.where(c.c.at < until)
        with self.state.engine.connect() as conn:
            return float(conn.execute(q).scalar() or 0.0)

    def by_day_and_model(self, since: datetime) -> list[SpendRow]:
        """Spend per UTC day and model since ``since``, newest day first."""
        c = schema.cost_ledger
        with self.state.engine.connect() as conn:
            rows = conn.execute(select(c).where(c.c.at >= since)).all()
        # Grouped here, not in SQL: date functions differ between SQLite and PostgreSQL, and a
        # month of ledger rows is a few hundred at most.
        groups: dict[tuple[date, str], list[Any]] = {}
        for r in rows:
            groups.setdefault((r.at.date(), r.model), []).append(r)
        out = [
            SpendRow(day=day, model=model, runs=len({r.run_id for r in members}),
                     calls=sum(r.calls for r in members),
                     prompt_tokens=sum(r.prompt_tokens for r in members),
                     completion_tokens=sum(r.completion_tokens for r in members),
                     cost_usd=sum(r.cost_usd for r in members))
            for (day, model), members in groups.items()
        ]
        out.sort(key=lambda s: (-s.day.toordinal(), s.model))
        return out
