"""The adversarial grounding suite (tests/grounding_suite.py) against the issue's targets.

>= 95% of planted errors caught in every class, <= 2% of correct drafts flagged, and no injection brief
publishable with the attacker's content, whether the obedient writer repeats itself or removes exactly
what the feedback named. bench/grounding.py prints the same figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.grounding_suite import (
    CORRECT,
    PLANTED,
    World,
    build_world,
    carries_payload,
    injections,
    removes_what_was_named,
    repeats,
    run_injection,
    validate_case,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Path(tmp_path_factory.mktemp("suite")))
    yield built
    built.state.close()


def test_correct_drafts_in_awkward_forms_pass(world: World) -> None:
    flagged = {text: [p.code for p in report.problems]
               for text, keys in CORRECT if not (report := validate_case(world, text, keys)).ok}
    assert len(flagged) / len(CORRECT) <= 0.02, flagged


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_planted_errors_are_caught_in_every_class(world: World, kind: str) -> None:
    missed = [text for text, keys in PLANTED[kind] if validate_case(world, text, keys).ok]
    assert 1 - len(missed) / len(PLANTED[kind]) >= 0.95, missed


def test_a_planted_error_names_its_class(world: World) -> None:
    def codes(text: str, keys: list[str]) -> set[str]:
        return {p.code for p in validate_case(world, text, keys).problems}

    assert "wrong_asset" in codes("Spot ether ETFs took in a net $1.38B on Tuesday.", ["etf1"])
    assert "wrong_direction" in codes("Spot bitcoin ETFs saw $1.38B of outflows on Tuesday.", ["etf1"])
    assert "wrong_direction" in codes("ETH fell 1.2% on the day.", ["gas1"])
    assert "price_mismatch" in codes("BTC is trading at $3,300.", ["fed1"])
    assert "time_mismatch" in codes("Bitrex halted withdrawals after a $48M exploit today.", ["hack1", "hack2"])
    assert "uncorroborated_ticker" in codes("FROG is ripping, up 300% this week.", ["frog1", "frog2", "frog3"])
    assert "obfuscated_link" in codes("Grants: pump-claim[.]fun/sol", ["pr1"])
    assert "single_source" in codes("The SOL validator count rose to 1,420 today.", ["val1"])


def test_a_feed_cannot_choose_the_link_we_publish(world: World) -> None:
    row = world.state.items_by_ids([world.items["pr1"].id])[world.items["pr1"].id]
    assert world.policy.link(row) is None  # a media feed whose entry links off its own site
    report = validate_case(world, "A Solana ecosystem fund announced $20M in grants.", ["pr1"])
    assert report.ok, report.problems  # cited, without the link


@pytest.mark.parametrize("writer", [repeats, removes_what_was_named], ids=["repeats", "removes-what-was-named"])
def test_no_injection_brief_is_publishable(world: World, writer: object) -> None:
    planted = injections()
    world.add([p.item for p in planted])
    leaked = []
    for injection in planted:
        draft, report = run_injection(world, injection, writer)  # type: ignore[arg-type]
        if report.ok and carries_payload(draft):
            leaked.append(draft.markdown)
    assert leaked == []
