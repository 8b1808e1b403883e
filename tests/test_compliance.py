"""Compliance phrasing by pattern families, and a disclaimer that counts only when it is really there.

Every family's own must-catch / must-not-catch examples (prompts/compliance/global.yaml) plus the
adversarial cases below: obfuscated promotion that must be caught, legitimate market news that must
pass, and disclaimers that are negated, altered, hidden or moved. Rates are asserted per family
(catch ≥ 95%) and over everything legitimate (false flags ≤ 2%); bench/compliance.py prints them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from crew.compliance import check_compliance, families
from crew.databrief import build
from crew.model import Problem
from memory.drafts import DraftStore
from sources.errors import ConfigError
from tapewatch.settings import ComplianceSettings
from tests.crew_support import fill_with_samples

DISCLAIMER = "Not financial advice."
ROOT = Path(__file__).resolve().parents[1]

# Promotion that must be caught, disguised the ways a writer (or an injected post) disguises it.
ADVERSARIAL: dict[str, list[str]] = {
    "guarantee": [
        "guar4nteed returns", "g-u-a-r-a-n-t-e-e-d", "GUARANTEED 10X", "gu\u200daranteed profits",
        "ｇｕａｒａｎｔｅｅｄ gains", "guarаnteed", "Guaranteed!!!", "You can’t go wrong here",
        "cant go wrong with $SOL", "Guaranteed\nreturns for stakers", "#Guaranteed", "g u a r a n t e e d gains",
        "<b>Guaranteed</b> returns", "**guaranteed** returns", "We 100% guarantee a 3x", "gu&#97;ranteed yield",
        "Profits guaranteed or your money back.", "guar\u200canteed", "guarantee\u0301d", "gaurantee you profits",
        "guaranteeeed", "You literally cannot go wrong.", "𝐠𝐮𝐚𝐫𝐚𝐧𝐭𝐞𝐞𝐝 profit", "G.U.A.R.A.N.T.E.E.D",
        "guaran\xadteed upside", "guaranteed 🚀 returns", "I promise you $WIF flips $PEPE.", "G U A R A N T E E D",
        "guaranteed", "gUaRaNtEeD", "gua\u200brantee\u200bd", "Guaranteed listing on Binance next week.",
    ],
    "price_target": [
        "PT $5 🚀", "price‑target $9 on $OP", "Price Target → $5", "$SOL will h1t $1k", "next stop: $100k",
        "TARGET OF $150K", "target of $150,000 by EOY", "ETH to 10k by summer", "$LINK $10 by E.O.Y.",
        "BTC will hit 200k eoy", "SOL is going to $500, mark my words", "ᴘʀɪᴄᴇ ᴛᴀʀɢᴇᴛ $12",
        "p r i c e  t a r g e t $3", "my price target: $0.10", "heading to $200 💰", "$ETH headed for $10,000",
        "DOGE will reach $1 by Christmas", "BTC $150k by year end", "targeting 5k on ETH", "$2 is next for $ARB",
        "Our target: $4,000 ETH.", "$BTC 200k incoming.", "SOL $1,000 soon.",
        "ETH will hit five figures by December.", "We expect $DOGE to hit $1.", "PT 1.5 for $XRP", "$ARB → $5",
        "Expect $ARB at $5 by Q2", "ETH 5k incoming", "SOL to 1k, mark my words.", "DOGE to a dollar by Christmas!",
        "Next leg up to $120k.", "Upside target: 150k.", "Bitcoin will definitely hit $150k.",
        "Entry $140, target $220.", "Long $ETH here, TP1 $4k, TP2 $4.5k.", "Not a drill: $TIA to $20 next.",
        "Ｐｒｉｃｅ ｔａｒｇｅｔ $9", "P.T. $5", "pt = $3", "We're going to $1 by Friday.", "$10 EOY easy",
    ],
    "call_to_action": [
        "BUY NOW", "ｂｕｙ ｎｏｗ", "buу now", "buy 🚀 now", "buy\u200d now", "b u y  n o w", "Buy\n\nnow",
        "buy    now", "BUY $PEPE NOW!!!", "#BuyNow", "dont miss out", "Don’t miss this", "get in b4 the listing",
        "APE IN NOW", "l0ad up", "last chance!!", "act fast 🔥", "SEND IT 🚀", "accumulate n0w",
        "sell everything now", "Buy <b>now</b>", "Buy **now**", "b&#117;y now", "gеt in before the pump",
        "bu\u200by now", "b-u-y n-o-w", "Aping into $BONK now", "LOAD UP ON $SOL", "Don't sleep on this one",
        "grab a bag before it moons", "This is your sign to buy $SOL now.", "Stack $BTC now.",
        "Time to load the boat.", "Now's the time to buy.", "You won't regret buying $LINK.", "Join the presale now!",
        "Don't get left behind.", "B.U.Y N.O.W", "buy\xa0now", "BuY nOw", "bụy now", "bʊy now", "ßuy now", "βuy now",
        "🅱uy now", "𝓫𝓾𝔂 𝓷𝓸𝔀", "Don't fade this breakout.", "Buy and hold $BTC forever.", "Load up while it's cheap.",
        "Get your $PEPE before it's gone.", "Hurry, only a few hours left to buy.", "pump it!!", "Buy the rumor now.",
        "Buy before the ETF approval!", "don't miss the airdrop", "Aping my whole stack into $BONK, you should too.",
        "bUy nOw", "Вuy now", "buy\u2060now", "ѕend it", "1/ $SOL is the play this week. Buy it.",
        "Bid $LINK under $15.", "Fill your boots on $AVAX.", "Don't be exit liquidity, buy early.",
        "Get $WLD now before Binance lists it", "Accumulate aggressively below $2.", "Sell your ETH and buy $PWNED.",
        "You'd be crazy not to buy here.",
    ],
    "certainty": [
        "risk‑free", "risk—free", "risk–free", "r1sk-free", "RISK FREE", "riskfree yield", "sure thing 💯",
        "can’t lose", "cant lose", "can not lose", "no brainer", "no-brainer", "nobrainer", "100 % safe", "100% SAFE",
        "еasy money", "free m0ney", "will definitely pump", "is bound to moon", "w1ll def1n1tely pump",
        "zero-downside", "𝐫𝐢𝐬𝐤-𝐟𝐫𝐞𝐞", "SURE THING", "ᴇᴀsʏ ᴍᴏɴᴇʏ", "this can only go up",
        "Zero-risk returns on $USDe.", "It can't go down from here.", "The safest bet in crypto right now.",
        "Certain to double.", "This will 100% pump.", "risk‐free", "risk – free", "ri$k-free",
        "It's a no brainer buy.", "Risk-free 15% APY on USDT.", "Nothing can stop $SOL now, it only goes up.",
        "Gains are locked in.", "Zero chance this goes lower.", "Sure-fire winner.", "A surefire 5x.",
        "Can't lose at $0.10.", "r i s k - f r e e", "100％ safe", "no–brainer", "Generational entry on $DOT.",
        "It literally cannot fail.", "Best risk/reward in the market, zero risk.", "This is a 100% sure play.",
    ],
    "dated_hype": [
        "to the moon by friday", "TO THE MOON 🚀🚀", "t0 the m00n", "moon soon™", "mo0n soon", "10x by next week",
        "10X BY NEXT WEEK", "pump incoming!!!", "about to explode 💥", "going parabolic", "#ToTheMoon",
        "mooning soon", "about to 100x", "gonna 10x this week", "P U M P incoming", "to the mооn", "lambo soon",
        "SOL is about to go parabolic", "pumping tomorrow", "50x before christmas", "Parabolic move incoming.",
        "10x incoming", "It's about to blast off.", "We're going to Valhalla by Friday", "ＴＯ ＴＨＥ ＭＯＯＮ",
        "This is the easiest 10x of the year.", "$ARB is going to explode this week.", "Parabolic by the weekend.",
        "Moon in 3 days.", "to the m\u200boon", "moon\xa0soon", "$JUP will 5x from here, easy.",
        "Send $BONK to valhalla 🚀", "Moon season starts now.", "Pump szn incoming",
    ],
}

# Market news written the way tapewatch writes it, plus traps: words that contain or resemble banned
# phrasing without promoting anything.
LEGITIMATE: list[str] = [
    "ETF issuers guarantee nothing.", "The SEC's target date is May 23.",
    "Analysts' price targets were cut (Reuters).", "Coinbase announced a $1B buyback.",
    "Buyers stepped in near $95k.", "The bridge was drained before users could act.",
    "A risk-free rate of 4.3% caps what stablecoin yields pay.", "The lowest-risk tranche filled first.",
    "MoonPay added SOL payments.", "Moonbeam (GLMR) rose 3%.", "Target date funds added a bitcoin sleeve.",
    "There is no guarantee of approval.", "BTC traded near $97,900 (+0.8%), ETH at $3,452 (+1.2%).",
    "Spot bitcoin ETFs took in a net $1.38B on Tuesday.", "ETH/BTC is down 4.2% on the week.",
    "Solana validators finished the Halcyon upgrade.", "Failed transactions fell to 12%.",
    "The SEC delayed its decision to May 23.", "MicroStrategy bought 5,000 BTC last week.",
    "Funding turned negative as longs were flushed.", "Stablecoin supply hit a record $180B.",
    "The Fed held rates at 4.25%-4.5%.", "Mt. Gox moved 10,000 BTC to a new wallet.",
    "Arbitrum's DAO voted to fund a $200M grant program.", "A whale bought $12M of PEPE on Binance.",
    "Open interest on SOL futures rose to $6.1B.", "Analysts at Bernstein said the rally could extend.",
    "Tether minted another $1B of USDT.", "The exchange paused withdrawals for two hours.",
    "Pump.fun launched a new token standard.", "Grayscale's fund saw outflows of $50M.",
    "The SEC chair said approval is not guaranteed.", "The DAO's objective is to cut fees.",
    "Hackers drained $40M; users were urged to revoke approvals.",
    "Volatility is expected around Friday's CPI print.", "Bitcoin's 10x run since 2020 drew new buyers.",
    "This isn't a sure thing.", "Moonwell and Moonbeam both rose.",
    "ETH could reach $4k if flows hold, analysts said.", "The token is up 10x from its low.",
    "Citi lowered its ETH price target to $4,300, the bank said.",
    "Standard Chartered reiterated its $200k bitcoin target for year-end.", "Buy-side demand stayed thin.",
    "ETF buyers now hold 1.1M BTC.", "Sell-off deepened after the hack.", "Nothing in DeFi is risk-free.",
    "The fund guarantees nothing to depositors.", "The presale's promoters were charged with fraud.",
    "Loading times on the explorer improved.", "The upgrade ships on Friday.",
    "Data via CoinGecko; prices at 12:00 UTC.", "Retail buyers returned as fees fell.",
    "The launch targets developers first.", "Regulators warned that no investment is risk-free.",
    "The SEC charged a Ponzi scheme that promised guaranteed returns.", "Easy-money policy ended in 2022.",
    "Traders loaded up on puts ahead of the vote.", "Users who act late pay more gas.", "Solana's send rate doubled.",
    "A moon-themed memecoin fell 40%.", "SafeMoon's former CEO was convicted.",
    "Governance passed a proposal to target 2% inflation.", "The project's roadmap lists no price objective.",
    "I/O bottlenecks slowed the node.", "Pepe (PEPE) slid 6% as whales sold.",
    "Hashrate is bound to the difficulty cycle.", "Polymarket odds of a rate cut by June rose to 62%.",
    "ARB unlocks 92M tokens on Saturday.", "The bank's analysts cut their BTC target to $120k, citing ETF outflows.",
    "BTC dropped 5% to $91,000 overnight.", "Coinbase's stock price target was lifted by Needham.",
    "A court set a target date of June 1 for the ruling.", "The SEC has not approved any staking ETF.",
    "The DAO will vote on the buyback next week.", "The Fed is expected to cut by 25 bp in March.",
    "Gold hit a record $3,000 an ounce.", "USDC supply grew 10% this month.",
    "Users must act before the deadline to keep their tokens, the team said.", "Traders are buying puts to hedge.",
    "Bulls defended $95k for a third day.", "Miners sent 5,000 BTC to exchanges.",
    "The token's 10x rally in January drew scrutiny.", "Developers plan to ship the upgrade by Q3.",
    "A pump in memecoin volume lifted Solana fees.", "The network's target block time is 12 seconds.",
    "Ethereum developers target a Q2 launch for Pectra.", "Stablecoins are not risk-free, the BIS said.",
    "BTC's move was sure to draw attention.", "The CFTC warned about guaranteed-return schemes.",
    "The fund's objective is long-term capital growth.", "Whales bought the dip as ETH slid to $3,000.",
    "The protocol's last chance to repay lenders is Friday.", "Holders accumulate more BTC as price dips.",
    "Buy orders stacked near $95k.", "ETH went parabolic in 2017.", "Volume jumped 5x this week.",
    "Can't-miss events this week: CPI, FOMC.", "Easy-money conditions fuelled the rally.",
    "The bill's sponsors said it will definitely face amendments.",
    "The project's main objective is to scale throughput.",
    "SEC chair: 'there is no such thing as a risk-free crypto product.'",
    "Binance told users to act fast and withdraw.", "The incoming SEC chair takes office in January.",
    "The roadshow's next stop is London.", "A breakout session on stablecoins drew 300 people.",
    "Lamborghini launched an NFT collection.", "The ETF decision is expected soon.",
    "Free trading on the new platform ends in March.", "Safe, the multisig wallet, raised $100M.",
    "Users can send ETH to the new bridge starting Monday.", "Load on the sequencer spiked.",
    "The bill would guarantee developers legal protection.", "FDIC insurance does not cover crypto.",
    "BTC is certainly more volatile than gold.", "Demand was bound to slow after the halving, analysts said.",
    "Traders are sure the Fed will cut.", "The hot wallet's keys were exposed.",
    "Memecoins went parabolic in March before crashing.", "ETH's move to $4,000 by Friday surprised traders.",
    "Analysts expect BTC to test $100k.", "The firm set a price target of $400 for COIN shares, Reuters reported.",
    "Pump.fun paused livestreams.", "A moon-themed NFT set sold out.", "Volumes were 3x higher than last week.",
    "Solana is 10x faster than Ethereum, its developers claim.", "Buy-and-hold investors outperformed.",
    "The exchange will act on the findings before the audit.", "Holders were told to claim refunds by May 1.",
    "The act passed the House.", "Grayscale's fund trades at a 5% discount.",
    "The DAO cut its spending target by 20%.", "Easy access to leverage fuelled the crash.",
    "No sure thing: the vote could slip.", "Bitcoin's 'digital gold' pitch is not guaranteed to win.",
    "The attacker sent it to a mixer.", "Staking rewards are not risk-free.", "ETH gas fees fell to 1 gwei.",
    "The SEC's objective is investor protection.", "Sell orders piled up near $100k.",
    "Binance listed the token; trading starts now.", "Trading opens now on Kraken for US users.",
    "Whales accumulate $LINK ahead of the upgrade.", "Analysts say buy signals are flashing on ETH.",
    "Solana's validator count rose to 1,400.", "The team targets mainnet in Q4.",
    "The token traded between $1.10 and $1.30.", "A long position of $50M was liquidated on Hyperliquid.",
    "Entry into force of MiCA's stablecoin rules is June 30.", "Binance will list WLD on Friday.",
    "The DAO's send-off for the old treasury passed.", "Prints on the tape showed large blocks.",
    "Risk/reward has worsened, analysts said.", "Exit liquidity concerns weighed on memecoins.",
    "The SEC sued the promoters of the scheme.", "BTC ETFs recorded their 10th straight day of inflows.",
    "Funding is elevated into Friday's expiry.", "The EOY options expiry totals $12B.",
    "Arbitrum's grant program targets game studios.", "The Fed's target range is 4.25%-4.5%.",
    "Analysts' median target is $150k, per a Reuters poll.", "Lido's stETH is not risk-free.",
    "Phantom wallet added Sui.", "The airdrop claim window closes on May 5.",
    "Long ETH positions on Bitfinex hit a record.", "Short BTC ETFs saw inflows.", "Get ready for CPI on Wednesday.",
    "Sell-offs deepened in Asia.", "Bid-ask spreads widened on Kraken.", "Buy-side liquidity returned.",
    "Long-term holders sold 50k BTC.", "Short interest in COIN rose.", "Stack Overflow added a crypto tag.",
    "Grab, the ride-hailing app, added USDC.", "Load on Base hit a record.",
    "Dump trucks of tokens hit the market as unlocks began.", "Ape Coin (APE) rose 5%.",
    "Accumulate, a new DeFi vault, launched.", "Long liquidations topped $300M.", "Short sellers covered.",
    "So far, ETF flows are positive.", "Just $20M left the funds.", "Now, the SEC must respond.",
    "Meanwhile, sell pressure eased, data showed.", "Buy orders at $95k absorbed the drop.",
    "Bitcoin miners, long a source of selling, held.", "If approved, get ready for volatility.",
    "Get the full report on our site.", "Bitcoin slipped 1.2% to $96,800 as Asian markets opened.",
    "Ether outperformed, rising 3.4% against the dollar.", "Spot ETH ETFs logged $120M of net inflows on Monday.",
    "Solana's DEX volume overtook Ethereum's for a second week.",
    "The SEC pushed back its decision on the Litecoin ETF to June.",
    "Coinbase said it will delist three privacy tokens.",
    "Tether's quarterly attestation showed $5B in excess reserves.",
    "A whale moved 20,000 ETH to Binance, on-chain data show.",
    "Funding rates turned positive after a week of shorts piling in.",
    "Open interest in BTC options hit a record ahead of expiry.", "The Fed minutes signalled patience on rate cuts.",
    "MicroStrategy now holds 450,000 BTC after another purchase.",
    "Arbitrum's token unlock adds 1.1B ARB to supply on Sunday.",
    "Hackers stole $12M from a lending protocol on Base.", "The protocol paused deposits and promised a post-mortem.",
    "Stablecoin market cap crossed $200B for the first time.", "The Bank of Japan held rates, lifting risk assets.",
    "Memecoin trading on Pump.fun fell to a six-month low.",
    "Analysts at JPMorgan see limited upside for miners this quarter.",
    "Bernstein reiterated its $200k target for bitcoin by end-2025.", "Ripple won a partial ruling; XRP rose 8%.",
    "Dogecoin's hashrate reached an all-time high.", "Binance's reserves fell by $1B in a week, per CryptoQuant.",
    "The token's price is down 90% from its peak.", "Market makers pulled liquidity ahead of the CPI print.",
    "Grayscale filed to convert its Solana trust into an ETF.",
    "Users rushed to withdraw after the exploit; outflows reached $300M.",
    "The DAO approved a buyback of up to $10M in tokens.", "Staking yields on Ethereum held near 3.1%.",
    "Polygon's zkEVM will sunset next year, the team said.",
    "Short-term holders are sitting on losses, Glassnode data show.", "Long-dated call options at $150k drew buyers.",
    "The exchange's CEO said customer funds are safe and fully backed.",
    "Regulators in Hong Kong approved two new exchanges.", "The bridge's TVL fell 40% after the hack.",
    "Ethereum's Pectra upgrade went live at epoch 364,032.",
    "Sui's network stalled for two hours before validators restarted it.",
    "Bitcoin's dominance rose to 61%, a four-year high.", "Fees on Solana averaged $0.002 per transaction.",
    "Traders bet on a 25 bp cut, CME FedWatch shows.", "Kraken plans to go public next year, sources said.",
    "The project raised $30M led by a16z.", "Chainlink's CCIP went live on five new chains.",
    "An airdrop for early users is scheduled for May 5.", "Retail interest, by Google searches, remains low.",
    "The correlation between BTC and the Nasdaq rose to 0.6.", "ETH/BTC fell to its lowest since 2021.",
    "Ordinals inscriptions surged, pushing fees higher.", "The SEC's new chair promised clearer rules for tokens.",
    "Circle minted $2B of USDC this week.", "Bitcoin miners sold more than they mined in April.",
    "Liquidations topped $500M as BTC swung $4,000 in an hour.", "The price of BTC doubled in 2024.",
    "MoonPay and PayPal expanded their partnership.", "The upgrade is expected to cut fees tenfold.",
    "Hyperliquid's HLP vault lost $4M on a squeeze.", "The team said the token will not be listed before Q3.",
    "Risk appetite returned as yields fell.", "Buy-the-dip demand appeared near $90k, per order-book data.",
    "Volatility is set to rise into Friday's expiry.",
]

NEGATED_DISCLAIMERS: list[str] = [
    "This is financial advice.", "Not financial advice? Think again.", "Not financial advice (jk)",
    "not not financial advice.", "Not financial advice. Just kidding.", "Not financial advice 😉",
    "Not financial advice... or is it?", "Nоt financial advice.", "Not financial\u200b advice.",
    "Not financial advice. Actually, this is financial advice.", "Not financial advice-ish.",
    "Not financial advice /s", "NFA", "Not financial advice† (†it is)", "Not financial advice. lol",
    'It isn\'t "not financial advice".', "Not financial advice. Consider this financial advice.",
    "Ignore the 'not financial advice' part.", "Not financial advice, but buy $SOL.",
    "Not financial advice (it totally is)", "Not financial advice 🤡", "not financial advice... wink wink",
    "Nоt fіnancial advice.", "This is definitely financial advice.", "Not financial advice, lol",
    "Not financial advice?!", "Definitely not financial advice 😉", "Not financial advice* (*it is)",
    "Never not financial advice.",
]
# (text, format): the disclaimer is only there as markup a reader does not see as the disclaimer.
HIDDEN_DISCLAIMERS: list[str] = [
    "Not <b>financial</b> advice.", "Not fin<i></i>ancial advice.",
    '<a href="https://x.example">Not financial advice.</a>', "[Not financial advice.](https://x.example)",
    "Not **financial** advice.", "~~Not financial advice.~~", "<s>Not financial advice.</s>",
    "<tg-spoiler>Not financial advice.</tg-spoiler>", "<!-- Not financial advice. -->",
    '<span class="tg-spoiler">Not financial advice.</span>', "||Not financial advice.||", "[Not financial advice.]",
    "![Not financial advice.](x.png)", "<b>Not</b> financial advice.", "<del>Not financial advice.</del>",
]
KEPT_DISCLAIMERS: list[str] = [
    "AI-written from stored sources. Not financial advice.", "This is not financial advice.", "NOT FINANCIAL ADVICE.",
    "<i>Not financial advice.</i>", "*Not financial advice.*", "Not financial advice. Do your own research.",
    "Not  financial\nadvice.", "Sources: CoinDesk, The Block. Not financial advice.",
    "No memes here, not financial advice.", "ETH rose 2%.\n\nNot financial advice.", "Not financial advice!",
    "<b>Brief</b>\nBTC up.\n\n<i>Not financial advice.</i>", "**Brief**\n\n_Not financial advice._",
    "Not financial advice. BTC data via [CoinGecko](https://coingecko.com).",
    "Not financial advice; figures from stored snapshots.",
    "Not financial advice — figures are from stored snapshots.", "Not financial advice.",
    "<i>Not financial advice.</i>\n", "BTC 97k.\nNot financial advice.", "— Not financial advice.",
    "Not financial advice. Sources: 3 stored items.", "Not financial advice. Data as of 12:00 UTC.",
    "(Not financial advice.)", "Note: Not financial advice.", "Disclaimer: not financial advice.",
    "Not financial advice. 🙏",
]


def flags(text: str, phrases: Sequence[str] = ()) -> list[Problem]:
    """The banned-phrase problems in ``text`` (the disclaimer is not asked for here)."""
    return check_compliance(text, "x", disclaimer=DISCLAIMER, require_disclaimer=False, banned_phrases=phrases)


def caught_by(text: str) -> set[str]:
    """Labels of the families that flag ``text``."""
    return {p.message.split(":")[0] for p in flags(text)}


def disclaimer_counts(text: str) -> bool:
    problems = check_compliance(text, "telegram", disclaimer=DISCLAIMER, require_disclaimer=True)
    return not [p for p in problems if p.code == "missing_disclaimer"]


FAMILIES = {f.id: f for f in families()}


def test_the_profile_has_the_five_families_with_examples_and_ships_as_package_data() -> None:
    assert set(FAMILIES) == {"guarantee", "price_target", "call_to_action", "certainty", "dated_hype"}
    for family in FAMILIES.values():
        assert len(family.must_catch) >= 10 and len(family.must_not_catch) >= 8 and family.rule
    assert files("prompts").joinpath("compliance", "global.yaml").is_file()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "compliance/*.yaml" in setuptools["package-data"]["prompts"]


@pytest.mark.parametrize("family_id", sorted(ADVERSARIAL))
def test_each_family_catches_at_least_95_percent_of_its_examples_and_the_adversarial_cases(family_id: str) -> None:
    family = FAMILIES[family_id]
    cases = [*family.must_catch, *ADVERSARIAL[family_id]]
    missed = [text for text in cases if family.label not in caught_by(text)]
    assert 1 - len(missed) / len(cases) >= 0.95, missed


def test_false_flags_stay_at_or_under_2_percent_of_everything_legitimate() -> None:
    cases = [*LEGITIMATE, *(t for f in FAMILIES.values() for t in f.must_not_catch)]
    flagged = {text: [p.message for p in flags(text)] for text in cases if flags(text)}
    assert len(flagged) / len(cases) <= 0.02, flagged


def test_a_flag_names_the_family_and_the_words_as_the_reader_sees_them() -> None:
    assert flags("Great setup, buy now!") == [Problem(
        "banned_phrase", "call to action: 'buy now'", "x", profile="global", rule="call_to_action",
        source="tapewatch house rules, prompts/compliance/global.yaml", action="needs_override")]
    assert [p.message for p in flags("ｂｕｙ ｎｏｗ and it's risk\u2011free")] == [
        "call to action: 'ｂｕｙ ｎｏｗ'", "certainty: 'risk\u2011free'"]
    assert [p.message for p in flags("gu\u200daranteed, to the moon by Friday")] == [
        "guarantee: 'guaranteed'", "dated hype: 'to the moon by Friday'"]
    # One problem per distinct phrase, however often it repeats.
    assert len(flags("Buy now. BUY NOW. buy now")) == 1


def test_promotion_in_telegram_html_and_markdown_is_read_through_the_markup() -> None:
    assert caught_by('<b>BUY</b> <a href="https://t.me/x">now</a>') == {"call to action"}
    assert caught_by("Our **price** _target_: $5") == {"price target"}
    assert caught_by("&#82;isk-free yield") == {"certainty"}
    assert caught_by("[Legit link](https://example.com/buy-now-guaranteed)") == set()  # link targets aren't prose


def test_user_banned_phrases_are_extra_literal_phrases_matched_after_the_same_folding() -> None:
    phrases = ["wen airdrop", "diamond hands"]
    assert [p.message for p in flags("WEN AIRDROP?", phrases)] == ["banned phrase 'wen airdrop'"]
    assert [p.message for p in flags("dia\u200bmond\u2011hands", phrases)] == ["banned phrase 'diamond hands'"]
    assert [p.message for p in flags("dіamond hands", phrases)] == ["banned phrase 'diamond hands'"]  # Cyrillic і
    assert flags("diamondhandsy is a handle", phrases) == []
    assert flags("Buy now", ["", "   "]) == flags("Buy now")  # blank phrases are ignored


@pytest.mark.parametrize("text", NEGATED_DISCLAIMERS)
def test_a_negated_or_altered_disclaimer_counts_as_missing(text: str) -> None:
    assert not disclaimer_counts(text)


@pytest.mark.parametrize("text", HIDDEN_DISCLAIMERS)
def test_a_disclaimer_split_by_markup_struck_through_or_in_a_link_counts_as_missing(text: str) -> None:
    assert not disclaimer_counts(text)


@pytest.mark.parametrize("text", KEPT_DISCLAIMERS)
def test_a_disclaimer_a_reader_sees_as_written_counts(text: str) -> None:
    assert disclaimer_counts(text)


def test_disclaimer_problems_say_why() -> None:
    def message(text: str) -> str:
        return check_compliance(text, "markdown", disclaimer=DISCLAIMER, require_disclaimer=True)[0].message

    assert message("BTC up 2%.") == "the required disclaimer 'Not financial advice.' is missing"
    assert message("[Not financial advice.](https://x.example)").endswith("is missing (found only as a link label)")
    assert message("Not **financial** advice.").endswith("is missing (found only split by markup)")
    assert message("BTC up. Not financial advice? Think again.").startswith(
        "the required disclaimer 'Not financial advice.' is negated or altered: '")
    assert message("Not financial advice. This is financial advice.") == (
        "the required disclaimer 'Not financial advice.' is contradicted: 'This is financial advice'")
    assert check_compliance("BTC up 2%.", "x", disclaimer=DISCLAIMER, require_disclaimer=False) == []
    assert check_compliance("BTC up 2%.", "x", disclaimer="  ", require_disclaimer=True) == []


def test_another_disclaimer_is_checked_the_same_way() -> None:
    wording = "Capital at risk. Do your own research."
    assert disclaimer_counts_with("Capital at risk. Do your own research.", wording)
    assert not disclaimer_counts_with("Capital at risk? Do your own research (lol).", wording)
    assert not disclaimer_counts_with("Capital at <b>risk</b>. Do your own research.", wording)
    wording = "This is not investment advice."
    for text in ["This is investment advice.", "This is not investment advice? lol",
                 "This is NOT not investment advice.", "This is not investment advice (it is).",
                 "This is not <i>investment</i> advice.",
                 "This is not investment advice. Jk.", "This is not investment advice\u2014but it should be.",
                 "This is not investment advice, but buy.", "Th1s is not investment advice."]:
        assert not disclaimer_counts_with(text, wording), text
    for text in ["this is not investment advice", "<b>This is not investment advice.</b>",
                 "Data from stored items. This is not investment advice.",
                 "This is not investment advice. Past performance is no guide."]:
        assert disclaimer_counts_with(text, wording), text


def disclaimer_counts_with(text: str, disclaimer: str) -> bool:
    return not check_compliance(text, "telegram", disclaimer=disclaimer, require_disclaimer=True)


def test_the_default_banned_phrases_are_empty_because_the_families_cover_the_old_seven() -> None:
    assert ComplianceSettings().banned_phrases == []
    for text in ["guaranteed gains", "we guarantee it", "our price target", "risk-free", "risk free yield",
                 "you can't lose", "you cannot lose"]:
        assert flags(text), text


def test_the_sample_day_data_briefs_pass_in_every_format_as_rendered(memory: Any) -> None:
    fill_with_samples(memory)
    drafts = DraftStore(memory.state)
    for ticker in (None, "SOL", "BTC", "ETH"):
        _, draft = build(memory, drafts, now=datetime.now(UTC), ticker=ticker)
        assert draft is not None
        for where, text in (("x", "\n".join(draft.x_thread)), ("telegram", draft.telegram_html),
                            ("markdown", draft.markdown)):
            assert check_compliance(text, where, disclaimer=DISCLAIMER, require_disclaimer=True) == [], (where, text)


def test_a_profile_that_is_not_shipped_is_one_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^compliance profile nowhere\.yaml: "):
        families("nowhere.yaml")
