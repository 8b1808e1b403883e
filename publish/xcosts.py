"""What X charges (pay-per-use): each part published and each post read is a cost in the ledger, under budgets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from crew.costs import day_start, month_start
from sources.errors import PublishError

_LINK = re.compile(r"https?://\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*", re.IGNORECASE)


class XBudgetExceeded(PublishError):
    """The daily or monthly X budget is used up: no publish run may post to X."""


@dataclass(frozen=True)
class XPrices:
    """USD per post read, per post created, per post created with a URL."""

    read: float = 0.005
    post: float = 0.015
    post_url: float = 0.20


@dataclass(frozen=True)
class XBudget:
    """Limits on X spend in USD (None: unlimited); UTC days and months."""

    daily_usd: float | None = None
    monthly_usd: float | None = None


def post_kind(text: str) -> str:
    """'post_url' when the post carries a link (X charges more for it), else 'post'."""
    return "post_url" if _LINK.search(text) else "post"


def post_cost(text: str, prices: XPrices) -> float:
    """What creating this post costs."""
    return prices.post_url if post_kind(text) == "post_url" else prices.post


def check_x_budget(budget: XBudget, spent: Callable[[datetime], float], now: datetime, planned: float = 0.0) -> None:
    """Raise ``XBudgetExceeded`` when today's or this month's X spend, plus ``planned``, passes its limit."""
    if budget.daily_usd is not None:
        today = spent(day_start(now))
        if today + planned > budget.daily_usd + 1e-9 or (not planned and today >= budget.daily_usd):
            tomorrow = day_start(now) + timedelta(days=1)
            raise XBudgetExceeded(
                f"the daily X budget would be passed: ${today:.3f} spent today"
                f"{f' + ${planned:.3f} for this brief' if planned else ''} of ${budget.daily_usd:.2f} "
                f"(publish.x_daily_budget_usd); X posting resumes at {tomorrow:%Y-%m-%d %H:%M} UTC. "
                "`tapewatch costs` shows the spend.")
    if budget.monthly_usd is not None:
        month = spent(month_start(now))
        if month + planned > budget.monthly_usd + 1e-9 or (not planned and month >= budget.monthly_usd):
            raise XBudgetExceeded(
                f"the monthly X budget would be passed: ${month:.3f} spent this month"
                f"{f' + ${planned:.3f} for this brief' if planned else ''} of ${budget.monthly_usd:.2f} "
                "(publish.x_monthly_budget_usd); X posting resumes next month. `tapewatch costs` shows the spend.")
