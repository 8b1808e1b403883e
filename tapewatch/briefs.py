"""Writing a brief, as the CLI and the scheduler ask for one: the crew when a model is configured, else the data brief.

Policy: with no model, the data brief (and a note on how to configure one). With a model, the crew; if
it cannot run (budget used up) or fails (LLM errors), an explicit request (``tapewatch brief``) gets the
error, while a scheduled run (``scheduled=True``) falls back to the data brief and says why, so the
main job keeps producing briefs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sources.errors import LLMError
from tapewatch.charts import attach_chart
from tapewatch.clients import (
    NO_MODEL,
    crew_enabled,
    crew_llms,
    crew_setup,
    grounding_context,
    price_history,
)
from tapewatch.settings import Settings

if TYPE_CHECKING:
    from crew.crewbrief import CrewOutcome
    from crew.model import Signals
    from memory.drafts import Draft, DraftStore
    from memory.store import Memory


@dataclass
class BriefResult:
    """What was written: the signals, the stored draft (None: nothing to report), how, and why so."""

    signals: Signals
    draft: Draft | None
    mode: str  # "crew" or "data"
    note: str = ""  # why a data brief was written instead of a crew brief, if it was
    crew: CrewOutcome | None = None


def write_brief(settings: Settings, memory: Memory, *, now: datetime, window: timedelta = timedelta(hours=24),
                ticker: str | None = None, topic: str | None = None, scheduled: bool = False,
                drafts: DraftStore | None = None, shape: str | None = None, chart: bool = True) -> BriefResult:
    """Write one brief for the window and store it as a draft (pending, or flagged if it fails grounding).

    ``drafts`` is where the draft is saved (a scheduled run saves it together with the end of its run);
    ``shape`` is its X form, "take" or "thread" (default ``publish.x_shape``); ``chart`` draws the lead
    ticker's chart for publishing (a chat answer needs none).
    """
    from crew.databrief import build
    from memory.drafts import DraftStore
    from memory.public_ids import assign_public_id, permalink

    state = memory.state
    drafts = drafts or DraftStore(state)
    # The archive's id is chosen before the text is written, so the posts can link to the brief's page.
    pid = assign_public_id({})
    link = permalink(settings.publish.archive_url, pid) or ""
    prices = price_history(settings, state)
    note = f"This is a data brief built from signals alone, because {NO_MODEL}."

    def with_chart(draft: Draft, signals: Signals) -> Draft:
        return attach_chart(settings, state, draft, signals, now=now, window=window)

    finish = with_chart if chart else None
    if crew_enabled(settings):
        from crew.crewbrief import run_crew_brief
        from memory.costs import CostLedger

        try:
            setup = crew_setup(settings, crew_llms(settings, state), state)
            outcome = run_crew_brief(memory, drafts, CostLedger(state), setup,
                                     grounding_context(settings, state, prices), now=now, window=window,
                                     ticker=ticker, topic=topic, prices=prices,
                                     shape=shape or settings.publish.x_shape,
                                     max_posts=settings.publish.x_max_posts, permalink=link, public_id=pid,
                                     finish=finish)
            return BriefResult(outcome.signals, outcome.draft, "crew", crew=outcome)
        except LLMError as exc:  # BudgetExceeded included
            if not scheduled:
                raise
            note = f"The analyst crew could not write this brief ({exc}), so this is a data brief instead."
    from crew.grounding import validate_draft

    context = grounding_context(settings, state, prices)
    signals, draft = build(memory, drafts, now=now, window=window, ticker=ticker, topic=topic, prices=prices,
                           validate=lambda d: validate_draft(d, context), link_of=context.policy.link,
                           shape=shape or settings.publish.x_shape, max_posts=settings.publish.x_max_posts,
                           permalink=link, public_id=pid, disclaimer=settings.compliance.disclaimer, finish=finish)
    return BriefResult(signals, draft, "data", note=note)
