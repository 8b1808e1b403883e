"""Run-time switches and review-card records survive in the state database."""

from __future__ import annotations

from memory.state import StateDB
from memory.switches import POSTING_PAUSED, ReviewCards, Switches


def test_switch_defaults_off_and_records_who_changed_it(state_url: str) -> None:
    url = state_url
    switches = Switches(StateDB(url))
    assert switches.get(POSTING_PAUSED).on is False
    assert switches.set(POSTING_PAUSED, True, "cli:alice") is True
    assert switches.set(POSTING_PAUSED, True, "telegram:bob") is False  # already on: nothing changes
    again = Switches(StateDB(url)).get(POSTING_PAUSED)  # a new process sees it
    assert again.on is True and again.changed_by == "cli:alice"
    assert switches.set(POSTING_PAUSED, False, "telegram:bob") is True
    assert switches.get(POSTING_PAUSED).changed_by == "telegram:bob"


def test_review_cards_are_remembered(state_url: str) -> None:
    cards = ReviewCards(StateDB(state_url))
    cards.record("a" * 32, -100, 42)
    assert cards.posted(["a" * 32, "b" * 32]) == {"a" * 32}
    assert cards.message_of("a" * 32) == ("-100", 42) and cards.message_of("b" * 32) is None
