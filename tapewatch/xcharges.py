"""X's pay-per-use charges wired into publishing: media upload client, costs into the ledger, budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tapewatch.settings import Settings

if TYPE_CHECKING:
    from memory.state import StateDB
    from publish.xcosts import XBudget, XPrices


def x_prices(settings: Settings) -> XPrices:
    """X's prices from settings (publish.x_price_*)."""
    from publish.xcosts import XPrices

    pub = settings.publish
    return XPrices(read=pub.x_price_read_usd, post=pub.x_price_post_usd, post_url=pub.x_price_post_url_usd)


def x_budget(settings: Settings) -> XBudget:
    """X's budgets from settings (publish.x_daily_budget_usd, publish.x_monthly_budget_usd)."""
    from publish.xcosts import XBudget

    return XBudget(settings.publish.x_daily_budget_usd, settings.publish.x_monthly_budget_usd)


def x_media_api(settings: Settings, secrets: dict[str, str]) -> Any:
    """A tweepy ``API`` (v1.1, for media upload) on the user's OAuth 1.0a credentials, bounded like the client."""
    import tweepy

    from sources.x_transport import XTransport, mount_transport

    auth = tweepy.OAuth1UserHandler(secrets["x_consumer_key"], secrets["x_consumer_secret"],
                                    secrets["x_access_token"], secrets["x_access_token_secret"])
    api = tweepy.API(auth)
    pub = settings.publish
    timeout = (pub.connect_timeout.total_seconds(), pub.timeout.total_seconds())
    mount_transport(api.session, timeout, pub.x_base_url)
    # Uploads go to their own host; behind a proxy (or the fake X API in tests) the same base URL serves them.
    api.session.mount("https://upload.twitter.com/", XTransport(timeout, pub.x_base_url))
    return api


def delivery_hooks(settings: Settings, state: StateDB, channels: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``publish.delivery.Delivery``: the chart of each take, X costs and budgets."""
    from memory.costs import CostLedger
    from publish.xcosts import check_x_budget, post_cost, post_kind
    from tapewatch.charts import chart_media

    ledger = CostLedger(state)
    prices, budget = x_prices(settings), x_budget(settings)
    x = channels.get("x")
    if x is not None and hasattr(x, "on_read"):
        def on_read(posts: int) -> None:
            if posts:
                ledger.record_x(datetime.now(UTC), "read", posts, posts * prices.read)

        x.on_read = on_read

    def on_sent(draft_id: str, channel: str, part: int, text: str, at: datetime) -> None:
        if channel == "x":
            ledger.record_x(at, post_kind(text), 1, post_cost(text, prices), draft_id=draft_id,
                            ref=f"x-{draft_id[:12]}-{part + 1}")

    def check(channel: str, planned: float, now: datetime) -> None:
        if channel == "x":
            check_x_budget(budget, lambda since: ledger.spent(since, service="x"), now, planned)

    def cost_of(channel: str, text: str) -> float:
        return post_cost(text, prices) if channel == "x" else 0.0

    return {"media_for": lambda draft, channel: chart_media(settings, draft), "on_sent": on_sent, "budget": check,
            "cost_of": cost_of}
