"""What each model server was found to support, remembered in the state database (per base URL and model)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from memory import schema
from memory.state import StateDB


@dataclass(frozen=True)
class ServerCapabilities:
    """A server's structured-output mode and tool support (None: not found out yet) and its measured speed."""

    structured: str | None = None  # json_schema | json_object | prompt
    tools: bool | None = None
    prompt_tps: float | None = None
    gen_tps: float | None = None
    note: str = ""
    updated_at: datetime | None = None


class ServerMemory:
    """Read and update ``ServerCapabilities`` rows; each update changes only the fields it names."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def get(self, base_url: str, model: str) -> ServerCapabilities:
        """What is known of ``model`` at ``base_url`` (all unknown when never seen)."""
        t = schema.llm_servers
        with self.state.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.base_url == base_url, t.c.model == model)).first()
        if row is None:
            return ServerCapabilities()
        return ServerCapabilities(row.structured, None if row.tools is None else bool(row.tools), row.prompt_tps,
                                  row.gen_tps, row.note or "", row.updated_at)

    def update(self, base_url: str, model: str, **fields: object) -> ServerCapabilities:
        """Set some of structured, tools, prompt_tps, gen_tps and note; returns the row as stored."""
        unknown = set(fields) - {"structured", "tools", "prompt_tps", "gen_tps", "note"}
        if unknown:
            raise ValueError(f"not a server capability: {', '.join(sorted(unknown))}")
        t = schema.llm_servers
        values = {**fields, "updated_at": datetime.now(UTC)}
        with self.state.engine.begin() as conn:
            done = conn.execute(update(t).where(t.c.base_url == base_url, t.c.model == model).values(**values))
            if not done.rowcount:
                try:
                    with conn.begin_nested():  # another process may insert the same server first
                        conn.execute(t.insert().values(base_url=base_url, model=model, **{"note": ""} | values))
                except IntegrityError:
                    conn.execute(update(t).where(t.c.base_url == base_url, t.c.model == model).values(**values))
        return replace(self.get(base_url, model))
