"""Tokens into money, and the budgets that stop new crew runs before they start."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sources.errors import LLMError


class BudgetExceeded(LLMError):
    """A daily or monthly LLM budget is used up; no new crew run may start."""


@dataclass(frozen=True)
class Price:
    """USD per million prompt and completion tokens."""

    prompt: float
    completion: float


# Host names that only resolve inside a machine or a private network (compose service names have no dot).
_PRIVATE_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".localhost")


def is_local_server(base_url: str) -> bool:
    """Whether a model server is your own: loopback, a private or link-local address, or a private host name.

    Such a server costs nothing per token unless ``llm.prices`` names the model, and may be slow (a CPU).
    """
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(_PRIVATE_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local


@dataclass(frozen=True)
class AgentUsage:
    """What one agent used in one run, as crewAI's per-LLM usage metrics report it."""

    agent: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int

    def cost(self, price: Price) -> float:
        """USD at ``price``."""
        return (self.prompt_tokens * price.prompt + self.completion_tokens * price.completion) / 1_000_000


@dataclass(frozen=True)
class Budget:
    """Spending limits in USD (None: unlimited); days and months are UTC."""

    daily_usd: float | None
    monthly_usd: float | None


def day_start(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day."""
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    """00:00 UTC on the first of ``now``'s month."""
    return day_start(now).replace(day=1)


def check_budget(budget: Budget, spent: Callable[[datetime], float], now: datetime) -> None:
    """Raise ``BudgetExceeded`` when today's or this month's spend has reached its limit.

    ``spent(since)`` is the USD recorded since a moment. Checked before a run, so one run may end past
    the limit by at most its own cost; the next one is refused.
    """
    if budget.daily_usd is not None:
        today = spent(day_start(now))
        if today >= budget.daily_usd:
            tomorrow = day_start(now) + timedelta(days=1)
            raise BudgetExceeded(
                f"the daily LLM budget is used up: ${today:.4f} spent today of ${budget.daily_usd:.2f} "
                f"(llm.daily_budget_usd); crew runs resume at {tomorrow:%Y-%m-%d %H:%M} UTC. "
                "`tapewatch costs` shows the spend; a data brief needs no budget (unset llm.model)."
            )
    if budget.monthly_usd is not None:
        month = spent(month_start(now))
        if month >= budget.monthly_usd:
            raise BudgetExceeded(
                f"the monthly LLM budget is used up: ${month:.4f} spent this month of ${budget.monthly_usd:.2f} "
                "(llm.monthly_budget_usd); crew runs resume next month. `tapewatch costs` shows the spend."
            )
