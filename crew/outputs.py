"""What each agent must answer with: pydantic models, and a tolerant parser for model replies."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Strict(BaseModel):
    # Unknown keys are an error: a reply that invents fields is not the shape we asked for. Only
    # ``WrittenBrief.framing`` has a default (a model that leaves it out still wrote a usable brief); the schema
    # sent to strict structured-output servers lists every property as required all the same.
    model_config = ConfigDict(extra="forbid")


class Fact(_Strict):
    """One fact from the data, with the data block ids that state it."""

    text: str = Field(min_length=1, max_length=600)
    item_ids: list[str] = Field(min_length=1, max_length=8)
    tickers: list[str] = Field(max_length=8)  # may be empty


class FactSheet(_Strict):
    """The researcher's answer."""

    focus: str = Field(max_length=200)
    facts: list[Fact] = Field(min_length=1, max_length=15)


class Point(_Strict):
    """One point of analysis, citing the data block ids it rests on."""

    text: str = Field(min_length=1, max_length=600)
    item_ids: list[str] = Field(min_length=1, max_length=8)


class Analysis(_Strict):
    """The analyst's answer."""

    why_it_matters: list[Point] = Field(max_length=6)
    catalysts: list[Point] = Field(max_length=6)
    risks: list[Point] = Field(max_length=6)
    contrarian: list[Point] = Field(max_length=4)


class Claim(_Strict):
    """One line of the brief: a claim in plain text and the item ids that back it."""

    text: str = Field(min_length=1, max_length=400)
    item_ids: list[str] = Field(min_length=1, max_length=4)
    ticker: str = Field(max_length=12)  # "" when the claim is about no single ticker


class BriefPart(_Strict):
    """A titled section of the brief."""

    heading: str = Field(min_length=1, max_length=80)
    claims: list[Claim] = Field(min_length=1, max_length=8)


class TickerFraming(_Strict):
    """How the brief reads for one ticker it features: positive, negative or neutral."""

    ticker: str = Field(max_length=12)
    # Any short word parses (an unknown one is dropped later, by ``crew.framing.clean``, not the whole brief);
    # the enum tells a constraining server the three words.
    framing: str = Field(max_length=40, json_schema_extra={"enum": ["positive", "negative", "neutral"]})


class WrittenBrief(_Strict):
    """The writer's answer: the take (one X post), the thread's later posts, the full brief's sections, and its
    framing of the tickers it takes a side on; rendered by ``crew.render`` like the data brief."""

    title: str = Field(min_length=1, max_length=120)
    take: Claim
    thread: list[Claim] = Field(max_length=11)  # one development per post after the take; may be empty
    sections: list[BriefPart] = Field(min_length=1, max_length=6)
    framing: list[TickerFraming] = Field(default_factory=list, max_length=12)

    @field_validator("framing", mode="before")
    @classmethod
    def _framing_as_list(cls, value: Any) -> Any:
        # The framing never makes a brief unusable: a mapping ({"SOL": "positive"}, as a model in prompt mode
        # may write it) becomes the list, entries of another shape are dropped and long strings clipped here;
        # unknown words and tickers no claim is about are dropped when the draft is assembled.
        if isinstance(value, dict):
            value = [{"ticker": k, "framing": v} for k, v in value.items()]
        if not isinstance(value, list):
            return []
        entries = [e for e in value if isinstance(e, dict) and set(e) == {"ticker", "framing"}
                   and all(isinstance(v, str) for v in e.values())]
        return [{"ticker": e["ticker"][:12], "framing": e["framing"][:40]} for e in entries][:12]


M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class MalformedOutput(ValueError):
    """A reply that is not the JSON object the task asked for."""


def parse_reply(model: type[M], raw: str) -> M:
    """The reply as ``model``: tolerates a code fence or prose around one JSON object, nothing else."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text.startswith("{"):
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise MalformedOutput("the reply contains no JSON object")
        text = text[start:end + 1]
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise MalformedOutput(f"the reply is not valid JSON ({exc})") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}"
                             for e in exc.errors()[:8])
        raise MalformedOutput(f"the JSON does not have the required shape: {problems}") from exc
