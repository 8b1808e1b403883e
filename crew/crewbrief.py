"""One crew brief: budget check, context, the crew run, its grounded draft, and what it cost.

crewAI is imported only inside ``run_crew_brief`` (via ``crew.analyst``), so importing this module is cheap.
The shell builds the LLM clients (``tapewatch.clients.crew_llms``) and hands them in.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from crew.costs import AgentUsage, Budget, Price, check_budget
from crew.datablocks import Citations, item_blocks, neutralise, signals_block
from crew.databrief import window_label
from crew.errors import llm_error, quiet_crewai_warnings
from crew.grounding import GroundingContext
from crew.guardrails import BriefFrame, RunChecks
from crew.lookup import Lookup
from crew.model import Signals, ValidationReport
from memory.costs import CostEntry, CostLedger
from memory.drafts import Draft
from memory.prices import PriceHistory
from sources.errors import LLMError

log = logging.getLogger(__name__)

AGENTS = ("researcher", "analyst", "writer")
TOPIC_MIN_SCORE = 0.25  # as the data brief: below this a search hit is not about the topic
_PROMPT_FILES = ("agents.yaml", "tasks.yaml")
# Filled into the research task's {lookups} when the server honours tools; without tools, the pre-fetched
# prices go there instead, and the prompt never mentions a tool the model cannot call.
TOOLS_NOTE = ("You may call the read-only tools to look up more stored items or a ticker's latest stored price, "
              "at most twice; usually the blocks above are enough.")


def prompt_version() -> str:
    """A short hash of the crew's YAML prose, recorded with every crew draft."""
    from importlib.resources import files

    digest = hashlib.sha256()
    for name in _PROMPT_FILES:
        digest.update(name.encode() + b"\0" + files("prompts").joinpath(name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Limits:
    """Bounds on every agent: reasoning steps, wall time and guardrail retries."""

    max_iter: int = 3
    max_execution_time_s: int = 300
    helper_retries: int = 1  # researcher and analyst: a malformed reply or unknown ids get one more try
    writer_retries: int = 2  # the writer's revisions after failed grounding checks


@dataclass(frozen=True)
class CrewSetup:
    """What a crew run needs from the shell: fresh LLM clients (usage is counted per client), prices, limits."""

    llms: Mapping[str, Any]  # agent → crewAI LLM
    models: Mapping[str, str]  # agent → model string
    prices: Mapping[str, Price]  # agent → its model's price
    budget: Budget = field(default_factory=lambda: Budget(None, None))
    limits: Limits = field(default_factory=Limits)
    context_items: int = 12
    disclaimer: str = "Not financial advice."
    where: str = ""  # the model server, for error messages
    timeout_s: float = 60.0
    tools: bool = True  # False: the server ignores or refuses tools; the researcher's lookups are pre-fetched
    # grounding.verifier_model's client; its model and price are under "verifier" in models and prices.
    verifier: Any = None


@dataclass
class CrewOutcome:
    """What a crew run produced: the signals, the stored draft (None: nothing to report), usage and cost."""

    signals: Signals
    draft: Draft | None
    run_id: str
    usage: tuple[AgentUsage, ...] = ()
    cost_usd: float = 0.0
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def llm_calls(self) -> int:
        """Successful LLM calls of the run."""
        return sum(u.calls for u in self.usage)


def run_crew_brief(memory: Any, drafts: Any, ledger: CostLedger, setup: CrewSetup, grounding: GroundingContext, *,
                   now: datetime, window: timedelta = timedelta(hours=24), ticker: str | None = None,
                   topic: str | None = None, prices: PriceHistory | None = None, shape: str = "take",
                   max_posts: int = 4, permalink: str = "", public_id: str = "",
                   finish: Callable[[Draft, Signals], Draft] | None = None) -> CrewOutcome:
    """Write one brief with the crew and store it: pending when grounded, flagged with the reasons when not
    (``finish`` completes it, e.g. with its chart, before it is saved and so reviewable)."""
    from crew.signals import compute_signals

    if len({id(llm) for llm in setup.llms.values()}) != len(AGENTS):
        raise ValueError("each agent needs its own LLM client: usage is counted per client")
    check_budget(setup.budget, ledger.spent, now)
    run_id = uuid.uuid4().hex
    recent = drafts.recent(now - timedelta(days=2))
    signals = compute_signals(memory.state, memory.vectors, now=now, window=window, recent_drafts=recent,
                              prices=prices)
    if signals.items == 0:
        return CrewOutcome(signals, None, run_id)
    rows = {r.id: r for r in memory.state.window_items(signals.window_start, signals.window_end)}
    ticker = ticker.upper().lstrip("$") if ticker else None
    picked = _pick_items(signals, rows, memory, ticker=ticker, topic=topic, limit=setup.context_items)
    if not picked:
        return CrewOutcome(signals, None, run_id)

    cites = Citations()
    data = item_blocks(picked, cites)
    label = topic or (f"${ticker}" if ticker else "")
    frame = BriefFrame(signals=signals, window_label=window_label(window), generated_at=now, topic=label,
                       disclaimer=setup.disclaimer, shape=shape, max_posts=max_posts, permalink=permalink,
                       public_id=public_id)
    inputs = {
        "window": f"{signals.window_start:%Y-%m-%d %H:%M} to {signals.window_end:%Y-%m-%d %H:%M} UTC "
                  f"({frame.window_label})",
        "focus": neutralise(label) if label else "whatever ranks highest in the signals, new stories first",
        "signals": signals_block(signals, cites, rows, tickers=[ticker] if ticker else ()),
        "data": data,
    }
    lookup = Lookup(memory, cites, window_start=signals.window_start, window_end=signals.window_end, prices=prices)
    inputs["lookups"] = TOOLS_NOTE if setup.tools else lookup.prefetch(_focus_tickers(signals, picked, ticker))
    checks = RunChecks(cites, grounding, frame, writer_retries=setup.limits.writer_retries,
                       helper_retries=setup.limits.helper_retries)
    error: LLMError | None = None
    started = time.monotonic()
    try:
        _kickoff(setup, lookup if setup.tools else None, checks, inputs)
    except Exception as exc:  # every failure inside crewAI becomes one readable LLMError
        error = LLMError(checks.fatal) if checks.fatal else llm_error(
            exc, setup.where, setup.timeout_s, checks.last_error, setup.limits.max_iter,
            elapsed_s=time.monotonic() - started)
    if error is None and checks.fatal:
        error = LLMError(checks.fatal)
    draft = None
    if error is None and checks.result is not None:
        built, report = checks.result
        if setup.verifier is not None and report.ok:
            report = _verified(setup.verifier, built, cites, report)
    usage = tuple(_usage(agent, setup) for agent in (*AGENTS, *(("verifier",) if setup.verifier else ())))
    cost = sum(u.cost(setup.prices[u.agent]) for u in usage)
    if error is None and checks.result is not None:
        draft = replace(
            built, status="pending" if report.ok else "flagged", validation=report.to_dict(),
            meta={**built.meta, "run_id": run_id, "models": dict(setup.models), "prompt_version": prompt_version(),
                  "tokens": {u.agent: {"prompt": u.prompt_tokens, "completion": u.completion_tokens, "calls": u.calls}
                             for u in usage},
                  "llm_calls": sum(u.calls for u in usage), "cost_usd": round(cost, 6),
                  "attempts": dict(checks.attempts)},
        )
    elif error is None:
        error = LLMError("the crew finished without a brief from the writer")
    # Spend is recorded whatever happened: failed runs were paid for too.
    ledger.record([CostEntry(at=now, run_id=run_id, agent=u.agent, model=u.model, calls=u.calls,
                             prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                             cost_usd=u.cost(setup.prices[u.agent]), status="failed" if error else "ok")
                   for u in usage if u.calls or u.prompt_tokens])
    if error is not None:
        raise error
    assert draft is not None
    if finish is not None:
        draft = finish(draft, signals)
    drafts.save(draft)
    ledger.attach(run_id, draft.id)
    return CrewOutcome(signals, draft, run_id, usage, cost, dict(checks.attempts))


def _pick_items(signals: Signals, rows: Mapping[str, Any], memory: Any, *, ticker: str | None, topic: str | None,
                limit: int) -> list[Any]:
    """The stored items the researcher sees: the focus's, or the top signals' and narratives', one per story."""
    if ticker:
        ids: list[str] = list(next((t.item_ids for t in signals.tickers if t.ticker == ticker), ()))
    elif topic:
        hits = memory.search(topic, limit * 2, since=signals.window_start, until=signals.window_end)
        ids = [h.id for h in hits if h.score >= TOPIC_MIN_SCORE]
    else:
        # Alternate narratives and tickers, strongest first, so both kinds of signal reach the prompt.
        groups = [list(n.item_ids[:3]) for n in signals.narratives[:3]]
        groups += [list(t.item_ids[:3]) for t in signals.tickers[:5]]
        ids = [i for rank in range(3) for group in groups for i in group[rank:rank + 1]]
    picked: list[Any] = []
    stories: set[str] = set()
    for item_id in ids:
        row = rows.get(item_id)
        if row is None or row.story_id in stories:
            continue
        stories.add(row.story_id)
        picked.append(row)
        if len(picked) >= limit:
            break
    return picked


def _focus_tickers(signals: Signals, picked: list[Any], ticker: str | None, limit: int = 3) -> list[str]:
    """The tickers whose latest price the researcher gets without tools: the focus, else the top shown ones."""
    if ticker:
        return [ticker]
    shown = {t for row in picked for t in str(row.tickers or "").split()}
    return [t.ticker for t in signals.tickers if t.ticker in shown][:limit]


def _kickoff(setup: CrewSetup, lookup: Lookup | None, checks: RunChecks, inputs: dict[str, str]) -> None:
    from crew.analyst import AnalystCrew
    from crew.tools import research_tools

    guardrails = {"researcher": checks.researcher, "analyst": checks.analyst, "writer": checks.writer}
    instance = AnalystCrew(setup.llms, research_tools(lookup) if lookup is not None else [], guardrails,
                           setup.limits)
    quiet_crewai_warnings()
    try:
        with _only_client_retries(), _quiet_event_bookkeeping():
            instance.crew().kickoff(inputs=inputs)
    finally:
        _forget(instance)


@contextmanager
def _only_client_retries() -> Iterator[None]:
    """Switch off crewAI's own extra retry of rate-limited calls for this run.

    crewAI 1.15 wraps every LLM call in up to 3 more attempts on a 429, on top of the HTTP client's
    retries; with it off, ``llm.max_retries`` is the one bound on retries (the openai SDK's, with
    exponential backoff and Retry-After honoured). The flag is a context variable that crewAI copies
    into the threads it runs agents in.
    """
    try:
        from crewai.llms.retry import _active_llm_rate_limit_retry as nested
    except ImportError:  # a crewAI without the wrapper: nothing to switch off
        yield
        return
    token = nested.set(True)
    try:
        yield
    finally:
        nested.reset(token)


@contextmanager
def _quiet_event_bookkeeping() -> Iterator[None]:
    """Stop crewAI printing its event-pairing warnings to stdout when a call fails (we raise one LLMError)."""
    try:
        from crewai.events.event_context import EventContextConfig, MismatchBehavior, _event_context_config
    except ImportError:
        yield
        return
    silent = MismatchBehavior.SILENT
    token = _event_context_config.set(EventContextConfig(mismatch_behavior=silent, empty_pop_behavior=silent))
    try:
        yield
    finally:
        _event_context_config.reset(token)


def _forget(instance: Any) -> None:
    """Drop the crew instance's agents and tasks from crewAI's process-wide memo cache.

    crewAI memoises ``@agent``/``@task`` methods by ``id(self)`` in a global cache that is never
    cleared: without this, every run's agents stay in memory, and a later crew instance that
    reuses a freed id would get the old run's agents, with the old LLM clients and tools.
    """
    try:
        from crewai.project.utils import cache
    except ImportError:
        return
    marker = f"('__instance__', {id(instance)})"
    store = getattr(cache, "_cache", None)
    lock = getattr(cache, "_lock", None)
    if store is None or lock is None:
        return
    with lock.w_locked():
        for key in [k for k in store if marker in k]:
            del store[key]


def _verified(llm: Any, draft: Draft, cites: Citations, report: ValidationReport) -> ValidationReport:
    """The report with the verifier's verdicts added; a failed verifier call leaves every claim unverified."""
    from crew import verifier

    claims = verifier.claims_of(draft.meta, cites.rows)
    try:
        labels = verifier.verify(llm, claims)
    except Exception as exc:
        log.warning("the claim verifier failed (%s); the draft is flagged for review", type(exc).__name__)
        labels = ["unverified"] * len(claims)
    return replace(report, problems=(*report.problems, *verifier.problems(claims, labels)))


def _usage(agent: str, setup: CrewSetup) -> AgentUsage:
    client = setup.verifier if agent == "verifier" else setup.llms[agent]
    summary = client.get_token_usage_summary()
    return AgentUsage(agent=agent, model=setup.models[agent], calls=int(summary.successful_requests),
                      prompt_tokens=int(summary.prompt_tokens), completion_tokens=int(summary.completion_tokens))
