"""Compliance profiles per channel: the shipped profiles as data, checked per channel by grounding, refused per
channel by delivery (real outbox, real tweepy and python-telegram-bot against the loopback fakes), shown on the
review surfaces, and the `compliance` and `doctor` commands.

Each profile is held to its own must-catch / must-not-catch examples and to held-out adversarial cases below
(written for the class: promotion phrased sideways, mixed scripts, fullwidth letters, traditional characters,
markup and zero-width characters), plus legitimate market commentary in awkward forms it must let through.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crew.compliance import check_compliance
from crew.grounding import validate_draft
from crew.model import ValidationReport
from crew.profiles import Profile, profiles
from memory.drafts import Draft, DraftStore
from memory.state import StateDB
from publish.audit import AuditLog
from publish.outbox import Outbox
from publish.review import ReviewQueue
from sources.errors import ConfigError
from tapewatch.bot.desk import card_html
from tapewatch.clients import delivery, draft_validator, grounding_context, open_state, publish_channels
from tapewatch.settings import ComplianceSettings, Settings
from tests.fakes.publishing import Sleeps, add_draft, make_settings
from tests.fakes.telegram_api import FakeTelegramAPI, serving_telegram
from tests.fakes.x_api import ME_ID, FakeXAPI, serving_x
from tests.test_publish_cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = profiles()

# Held out: never in the YAML. Each must be caught by the named rule of the named profile.
ADVERSARIAL: dict[str, dict[str, list[str]]] = {
    "cn": {
        "exchange_promotion": [
            "想买 $SOL？欧易新人注册立享手续费五折",
            "ｂｉｎａｎｃｅ 註冊 連結 👉 置頂",
            "币\u200b安 邀请码见评论区",
            "Bybit：今天充值即送 10 USDT",
            "<b>MEXC</b> 上线 $WIF，<a href=\"https://example.com\">立即交易</a>",
            "Open your account on OKX in two minutes and trade $ETH.",
            "KuCoin 新用户福利，限时领取",
            "Ｂｉｔｇｅｔ 现在下载 App 注册",
        ],
        "trading_promotion": [
            "ＢＴＣ 20倍杠杆 做多，跟上！",
            "今晚带单：ETH 永續合約 開倉",
            "Go long $SOL, our VIP group has the entry.",
            "加 群 领 取 喊 单",
            "满仓 $PEPE，梭哈就完事了",
            "Copy trading our desk is one click away.",
        ],
        "token_offering": [
            "ＩＤＯ 白名單 今晚開放",
            "新项目预售已开启，最低认购 100 USDT",
            "The seed round is live for early supporters.",
            "TGE 前参与打新，名额有限",
        ],
        "rwa_tokenisation": [
            "美债代币化产品年化5%，RWA 是下一个十倍赛道",
            "Tokenized U.S. Treasuries are the safest yield on-chain.",
            "把黄金代幣化，人人都能買",
            "$ONDO: the RWA leader.",
        ],
        "rmb_stablecoin": [
            "离岸人民币稳定币 AxCNH 正式上线",
            "A CNH-pegged stablecoin is coming to Hong Kong.",
            "錨定人民幣的穩定幣今日發行",
        ],
        "stablecoin_promotion": [
            "USDT 理財 年化 12%，隨存隨取",
            "Swap your RMB into USDC at our desk, same-day.",
            "穩定幣質押收益 8%",
            "$FDUSD deposits earn 9% APY this week.",
        ],
    },
    "eu": {
        "misleading_safety": ["Holding $BTC is risk free over four years.", "Our vault keeps your funds secured.",
                              "The first ESMA-approved memecoin."],
        "unidentified_promotion": ["Grab 20% off fees with our affiliate code below.",
                                   "This post is sponsored by ABC Wallet."],
    },
    "uk": {
        "incentive_to_invest": ["Join today and get £50 in free bitcoin.", "Refer friends, earn 10 USDT each.",
                                "Sign-up reward: 25 free tokens."],
        "not_fair_clear": ["Staking $ETH is zero-risk income."],
    },
    "us": {
        "paid_promotion": ["We were compensated by XYZ Labs for this thread.", "Paid post: why $ABC is early."],
        "unregistered_offering": ["Get in the $XYZ presale before it ends.", "The IDO opens Friday at noon."],
    },
}

# Legitimate commentary each profile must let through (news, enforcement, figures), in awkward forms too.
LEGITIMATE: dict[str, list[str]] = {
    "cn": [
        "比特币本周上涨3%，以太坊持平。",
        "美国监管机构对币安罚款43亿美元。",
        "Binance's CEO stepped down after the settlement.",
        "稳定币总市值创历史新高。",
        "USDT 供应量升至 1400 亿美元。",
        "The yuan weakened past 7.3 per dollar.",
        "Rwanda's mobile money network grew 20%.",
        "Open interest on BTC futures rose 4% overnight.",
        "中国人民银行警示虚拟货币交易炒作风险。",
        "ETF inflows turned positive for the week.",
        "Exchange reserves of ETH fell to a multi-year low.",
        "以太坊网络费用降至年内低点。",
        "The tokenizer library shipped version 2.",
        "Stablecoin regulation advanced in the Senate.",
        "Coinbase stock rose after earnings beat.",
        "Gold hit a record high as the dollar slid.",
        "哈希率创新高，矿工收入下降。",
        "ICOs have been banned in mainland China since 2017.",
    ],
    "eu": ["No crypto-asset is risk-free.", "MiCA licences were granted to three exchanges.",
           "ESMA warned retail investors about crypto-assets.", "Ether fell 3% after the upgrade."],
    "uk": ["The FCA banned refer-a-friend bonuses for cryptoassets in 2023.", "Bitcoin rose 2% in London trading.",
           "No investment is risk-free, the FCA says.", "Free cash flow at the miner turned positive."],
    "us": ["The SEC charged three promoters over paid promotion of tokens.", "ICO funding collapsed in 2018.",
           "Bitcoin ETFs took in $300m on Tuesday.", "Miners sold 4,000 BTC last week."],
}


def _caught(profile: Profile, text: str) -> set[str]:
    return {p.rule for p in profile.check(text, "telegram")}


@pytest.mark.parametrize("name", ["global", "eu", "uk", "us", "cn"])
def test_each_shipped_profile_catches_its_own_examples_and_passes_its_own_legitimate_ones(name: str) -> None:
    profile = SHIPPED[name]
    assert profile.rules, name
    missed = [(f.id, t) for f in profile.rules for t in f.must_catch
              if f.id not in {p.rule for p in check_compliance(t, "x", disclaimer="", require_disclaimer=False,
                                                               rules=(f,))}]
    total = sum(len(f.must_catch) for f in profile.rules)
    assert len(missed) <= 0.05 * total, missed
    passes = [t for f in profile.rules for t in f.must_not_catch]
    flagged = [(t, _caught(profile, t)) for t in passes if {r for r in _caught(profile, t)} - {"risk_warning"}]
    assert len(flagged) <= 0.02 * len(passes), flagged
    for family in profile.rules:
        assert len(family.must_catch) >= 5 and len(family.must_not_catch) >= 4 and family.rule, family.id


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_each_profile_catches_held_out_adversarial_promotion(name: str) -> None:
    profile = SHIPPED[name]
    missed = [(rule, t) for rule, texts in ADVERSARIAL[name].items() for t in texts if rule not in _caught(profile, t)]
    assert missed == []


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_each_profile_lets_legitimate_commentary_through(name: str) -> None:
    profile = SHIPPED[name]
    flagged = {t: _caught(profile, t) - {"risk_warning"} for t in LEGITIMATE[name]}
    assert {t: r for t, r in flagged.items() if r} == {}
    # The jurisdiction profiles do not catch the global profile's legitimate examples either.
    legit = [t for f in SHIPPED["global"].rules for t in f.must_not_catch]
    assert [t for t in legit if _caught(profile, t) - {"risk_warning"} and name != "global"] == []


def test_every_rule_names_its_source_and_action_and_unverified_wording_says_so() -> None:
    assert set(SHIPPED) >= {"global", "eu", "uk", "us", "cn"}
    for profile in SHIPPED.values():
        for rule in [*profile.rules, *profile.required]:
            assert rule.action in ("block", "needs_override") and rule.source.document, (profile.name, rule.id)
            if profile.name != "global":  # regulators' texts could not be checked offline
                assert rule.source.verify and rule.source.cite().endswith("(verify before relying on it)")
    assert {f.id for f in SHIPPED["cn"].rules if f.kind == "topic"} >= {
        "exchange_promotion", "trading_promotion", "token_offering", "rwa_tokenisation", "rmb_stablecoin",
        "stablecoin_promotion"}
    assert all(f.action == "block" for f in SHIPPED["cn"].rules)
    [warning] = SHIPPED["uk"].required
    assert warning.texts["en"].startswith("Don't invest unless you're prepared to lose all the money you invest.")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "starting points, not legal advice" in readme


def test_required_wording_counts_only_when_it_is_really_there() -> None:
    uk = SHIPPED["uk"]
    [warning] = uk.required
    text = warning.texts["en"]
    assert "risk_warning" not in _caught(uk, f"BTC rose 2%. {text}")
    assert "risk_warning" in _caught(uk, "BTC rose 2%.")
    assert "risk_warning" in _caught(uk, f"BTC rose 2%. <s>{text}</s>")  # struck through: not shown as meant


def _write(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(body, encoding="utf-8")
    return folder


BAD_PATTERN = """profile: house
defaults: {action: block, source: {document: House rules}}
topics:
  - id: shill_links
    label: shill link
    patterns: ['(?:ref|referral) link(']
"""


def test_a_profile_with_a_bad_pattern_is_rejected_at_start_up_naming_file_and_rule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(tmp_path, "house.yaml", BAD_PATTERN)
    with pytest.raises(ConfigError, match=r"house\.yaml, rule shill_links: a pattern does not compile"):
        ComplianceSettings(profiles_dir=folder)
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[compliance]\nprofiles_dir = "{folder}"\n'
                      '[compliance.channels]\ntelegram = ["global", "house"]\n')
    for command in (["config", "check"], ["doctor"], ["compliance", "profiles"]):
        code, output = cli(["--config", str(config), *command], monkeypatch, capsys)
        lines = [line for line in output.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, output
        assert str(folder / "house.yaml") in lines[0] and "rule shill_links" in lines[0]


@pytest.mark.parametrize(("body", "says"), [
    ("profile: house\ntopics:\n  - id: a\n    label: a\n    patterns: [x]\n",
     "rule a: ValueError: every rule names its source"),
    ("profile: house\ndefaults: {source: {document: d}}\ntopics:\n  - id: a\n    label: a\n    action: warn\n"
     "    patterns: [x]\n", "rule a: ValueError: action 'warn' is not one of block, needs_override"),
    ("profile: house\n  bad: [\n", "not valid YAML"),
    ("families: []\n", "needs a 'profile:' name"),
])
def test_other_broken_profiles_are_one_clear_line_too(tmp_path: Path, body: str, says: str) -> None:
    folder = _write(tmp_path, "house.yaml", body)
    with pytest.raises(ConfigError, match=r"house\.yaml") as caught:
        ComplianceSettings(profiles_dir=folder)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_profile_names_are_refused_in_channels_and_in_schedule_entries(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown compliance profile\(s\) jp; known: cn, eu, global, uk, us"):
        ComplianceSettings(channels={"telegram": ["global", "jp"]})
    with pytest.raises(ConfigError, match="unknown compliance profile"):
        Settings(data_dir=tmp_path, schedule={"briefs": [{"name": "am", "cron": "0 8 * * *",
                                                          "profiles": {"telegram": ["xx"]}}]})
    assert ComplianceSettings(channels={"telegram": ["global", "cn"]}).channels == {
        "x": ["global"], "telegram": ["global", "cn"]}


# --- grounding, delivery and review ------------------------------------------------------------------------

CN_PROMO = "SOL 现已在币安上线，注册即送福利。"


def _cn_draft(state: StateDB, tag: str, *, status: str = "pending", telegram_extra: str = CN_PROMO,
              x_extra: str = "") -> Draft:
    """A draft that passes grounding as written, with ``telegram_extra`` in its Telegram text."""
    base = add_draft(state, tag, posts=2)
    DraftStore(state).update_meta(base.id, channels=["none"])  # the helper's own copy goes nowhere
    thread = (base.x_thread[0] + x_extra, *base.x_thread[1:])
    html = base.telegram_html.replace("\nNot financial advice.", f"\n{telegram_extra}\nNot financial advice.")
    return DraftStore(state).save(replace(base, id=f"{tag}cn{'0' * 28}"[:32], x_thread=thread, telegram_html=html,
                                          status=status, meta={}))


def _settings(tmp_path: Path, x: FakeXAPI, tg: FakeTelegramAPI, **compliance: Any) -> Settings:
    base = make_settings(tmp_path, x.base_url, tg.base_url)
    return base.model_copy(update={"compliance": ComplianceSettings(**compliance)})


def test_grounding_reports_each_channels_problems_with_profile_rule_and_source(tmp_path: Path) -> None:
    with serving_x() as x, serving_telegram() as tg:
        s = _settings(tmp_path, x, tg, channels={"x": ["global", "us"], "telegram": ["global", "cn"]})
    state = open_state(s)
    draft = _cn_draft(state, "a")
    report = draft_validator(s, state)(draft)
    assert report.ok, report.problems  # X may still go out
    [block] = report.blocked()["telegram"]
    assert (block.profile, block.rule, block.action, block.where) == ("cn", "exchange_promotion", "block", "telegram")
    assert "Yinfa [2026] No. 42" in block.source and "verify before relying on it" in block.source
    assert "x" not in report.blocked()
    # Stored and read back, the problem keeps its profile, rule and source.
    again = ValidationReport.from_dict(report.to_dict())
    assert again.blocked() == report.blocked() and "blocked on telegram" in again.summary
    # The same words on X, whose profiles are global and us, are not refused there.
    both = validate_draft(replace(draft, x_thread=(draft.x_thread[0] + " " + CN_PROMO, *draft.x_thread[1:])),
                          grounding_context(s, state))
    assert set(both.blocked()) == {"telegram"}
    # Every channel refused: the draft itself cannot go anywhere, so it is held like any failing draft.
    only_cn = replace(grounding_context(s, state), channel_profiles={"x": ("cn",), "telegram": ("cn",)})
    everywhere = validate_draft(replace(draft, x_thread=(draft.x_thread[0] + " " + CN_PROMO, *draft.x_thread[1:])),
                                only_cn)
    assert not everywhere.ok and "blocked_everywhere" in {p.code for p in everywhere.problems}


def test_a_schedule_entrys_profiles_replace_the_channels_profiles_for_its_drafts(tmp_path: Path) -> None:
    with serving_x() as x, serving_telegram() as tg:
        s = _settings(tmp_path, x, tg)  # telegram = ["global"]
    state = open_state(s)
    draft = _cn_draft(state, "a")
    assert draft_validator(s, state)(draft).blocked() == {}
    DraftStore(state).update_meta(draft.id, profiles={"telegram": ["global", "cn"]})
    report = draft_validator(s, state)(DraftStore(state).get(draft.id))
    assert set(report.blocked()) == {"telegram"}


def _run(s: Settings, state: StateDB) -> Any:
    d = delivery(s, state, publish_channels(s))
    d.sleep = Sleeps()
    return asyncio.run(d.run())


def test_a_draft_for_x_and_a_cn_telegram_channel_goes_out_on_x_only(tmp_path: Path) -> None:
    with serving_x() as x, serving_telegram() as tg:
        s = _settings(tmp_path, x, tg, channels={"x": ["global", "us"], "telegram": ["global", "cn"]})
        state = open_state(s)
        queue = ReviewQueue(state, reviewers=["alice"], validator=draft_validator(s, state))
        draft = _cn_draft(state, "a")
        queue.validate(draft.id)
        queue.approve(draft.id, "alice")  # no override needed: the block is the channel's, not the draft's
        report = _run(s, state)
        assert [p.text for p in x.posts_by(ME_ID)] == list(draft.x_thread)
        assert tg.messages == []
        assert report.published == [draft.id] and queue.drafts.get(draft.id).status == "published"
        [(draft_id, channel, why)] = report.refused
        assert (draft_id, channel) == (draft.id, "telegram") and "cn/exchange_promotion" in why and "Yinfa" in why
        [row] = Outbox(state.engine).rows(draft.id, "telegram")
        assert row.state == "blocked" and "cn/exchange_promotion" in (row.error or "")
        refusals = [e for e in AuditLog(state.engine).for_draft(draft.id) if e.action == "refused"]
        assert [(e.channel, "cn/exchange_promotion" in (e.reason or "")) for e in refusals] == [("telegram", True)]
        # Nothing is retried later: a second run sends nothing anywhere.
        assert _run(s, state).parts_sent == 0 and tg.messages == [] and len(x.posts_by(ME_ID)) == 2


def test_delivery_checks_the_channels_profiles_even_on_a_draft_never_validated(tmp_path: Path) -> None:
    with serving_x() as x, serving_telegram() as tg:
        s = _settings(tmp_path, x, tg, channels={"telegram": ["global", "cn"]})
        state = open_state(s)
        queue = ReviewQueue(state, reviewers=["alice"])
        draft = _cn_draft(state, "b", telegram_extra="Earn 12% APY on USDT in our vault.")
        queue.approve(draft.id, "alice")
        report = _run(s, state)
        assert [r[1] for r in report.refused] == ["telegram"] and "stablecoin_promotion" in report.refused[0][2]
        assert tg.messages == [] and len(x.posts_by(ME_ID)) == 2
        # A clean draft on the same channels goes out on both.
        clean = _cn_draft(state, "c", telegram_extra="SOL 本周上涨。")
        queue.approve(clean.id, "alice")
        assert _run(s, state).published == [clean.id] and len(tg.messages) == 1


def test_the_review_surfaces_show_which_channel_is_blocked_and_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[review]\nreviewers = ["alice"]\n'
                      '[compliance.channels]\ntelegram = ["global", "cn"]\n')
    code, _ = cli(["--config", str(config), "config", "check"], monkeypatch, capsys)
    assert code == 0
    from tapewatch.settings import load_settings

    s = load_settings(config)
    state = open_state(s)
    draft = _cn_draft(state, "a")
    ReviewQueue(state, reviewers=["alice"], validator=draft_validator(s, state)).validate(draft.id)
    code, output = cli(["--config", str(config), "drafts", "show", draft.id[:12], "--format", "none"],
                        monkeypatch, capsys)
    assert code == 0
    assert "blocked on telegram" in output and "cn/exchange_promotion" in output and "Yinfa [2026] No. 42" in output
    card = card_html(DraftStore(state).get(draft.id))
    assert "Blocked on telegram" in card and "cn/exchange_promotion" in card and "no override" in card


def test_the_web_desk_draft_page_shows_the_blocked_channel(tmp_path: Path, memory: Any) -> None:
    from memory.accounts import Accounts
    from tapewatch.web.app import WebDeps, build_app
    from tests.web_support import PASSWORD, client_for, sign_in

    s = make_settings(tmp_path).model_copy(update={"compliance": ComplianceSettings(
        channels={"telegram": ["global", "cn"]})})
    deps = WebDeps(settings=s, state=memory.state, memory=lambda: memory, validator=draft_validator(s, memory.state))
    Accounts(memory.state).add("rita", "reviewer", PASSWORD)
    draft = _cn_draft(memory.state, "a")
    ReviewQueue(memory.state, reviewers=["alice"], validator=deps.validator).validate(draft.id)
    client = client_for(deps)
    assert build_app is not None and sign_in(client, "rita").status_code in (302, 303)
    page = client.get(f"/desk/drafts/{draft.id}")
    assert page.status_code == 200
    assert 'id="blocked-telegram"' in page.text and "cn/exchange_promotion" in page.text
    assert "Yinfa [2026] No. 42" in page.text and 'id="blocked-x"' not in page.text


# --- the commands -------------------------------------------------------------------------------------------



def test_compliance_check_prints_each_problem_with_rule_and_source_and_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = cli(["compliance", "check", "--profile", "global", "--profile", "cn", "--text",
                         "在币安注册，返佣20%。Guaranteed 10x."], monkeypatch, capsys)
    assert code == 1
    assert "block cn/exchange_promotion" in output and "needs_override global/guarantee" in output
    assert "source: Yinfa [2026] No. 42" in output and "2 problem(s) under global, cn" in output
    text = tmp_path / "brief.html"
    text.write_text("<b>BTC</b> rose 2% on Monday.\nNot financial advice.", encoding="utf-8")
    code, output = cli(["compliance", "check", "-p", "cn", "-p", "us", "--file", str(text)], monkeypatch, capsys)
    assert code == 0 and "ok: nothing under cn, us" in output
    code, output = cli(["compliance", "check", "-p", "jp", "--text", "x"], monkeypatch, capsys)
    assert code == 2 and "unknown compliance profile(s) jp" in output
    code, output = cli(["compliance", "check", "-p", "cn", "--file", str(tmp_path / "missing.txt")],
                        monkeypatch, capsys)
    assert code == 2 and "cannot read" in output and len(output.strip().splitlines()) == 1


def test_compliance_profiles_lists_every_profile_its_channels_and_its_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[compliance.channels]\nx = ["global", "us"]\n'
                      'telegram = ["global", "cn"]\n')
    code, output = cli(["--config", str(config), "compliance", "profiles"], monkeypatch, capsys)
    assert code == 0
    for name in ("global", "eu", "uk", "us", "cn"):
        assert f"{name} · " in output
    assert "channels: x, telegram" in output and "rmb_stablecoin" in output and "risk_warning" in output
    assert "starting points, not legal advice" in output


def test_doctor_reminds_of_the_automated_account_label_and_the_reply_rules(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tapewatch.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[publish]\ntelegram_chat_id = "@desk"\n'
                      'x_allowed_mentions = ["tapewatch_news"]\n')
    code, output = cli(["--config", str(config), "doctor"], monkeypatch, capsys)
    assert code == 1 and "TAPEWATCH_X_CONSUMER_KEY" in output  # nothing to post with yet
    assert "Label the account as automated" in output and "prior approval" in output
    assert "@tapewatch_news" in output and "at most 4 cashtags and 2 hashtags" in output
    for key in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.setenv(f"TAPEWATCH_{key}", "s3cret")
    code, output = cli(["--config", str(config), "doctor"], monkeypatch, capsys)
    assert code == 0 and "fix" not in output and "s3cret" not in output


def test_mentions_are_rewritten_in_generated_posts_and_refused_in_hand_edits_unless_allowed(tmp_path: Path) -> None:
    from crew.model import BriefLine, BriefSection, DataBrief, SourceRef
    from crew.render import render_x_thread

    ref = SourceRef("a" * 32, "t", "https://news.example/a", "wire")
    brief = DataBrief("Brief", "last 24h", datetime.now(UTC), (BriefSection("What happened", (
        BriefLine("@alice and @tapewatch_news say $SOL validators shipped a client", (ref,)),)),),
        footer="Not financial advice.")
    joined = "\n".join(render_x_thread(brief))
    assert "@" not in joined and "alice and tapewatch_news say" in joined
    with serving_x() as x, serving_telegram() as tg:
        s = make_settings(tmp_path, x.base_url, tg.base_url, x_allowed_mentions=["@tapewatch_news"])
    state = open_state(s)
    draft = _cn_draft(state, "a", telegram_extra="")
    check = draft_validator(s, state)
    edited = replace(draft, x_thread=(draft.x_thread[0] + " cc @tapewatch_news", *draft.x_thread[1:]))
    assert "mention" not in {p.code for p in check(edited).problems}
    edited = replace(draft, x_thread=(draft.x_thread[0] + " cc @someone_else", *draft.x_thread[1:]))
    assert "mention" in {p.code for p in check(edited).problems}
