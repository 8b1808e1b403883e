"""CLI: ``tapewatch doctor``: is this installation set up to publish, and the platform rules an operator must keep."""

from __future__ import annotations

import typer

from tapewatch.cli.root import app, out, settings
from tapewatch.settings import Settings, format_duration

X_CREDENTIALS = ("x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret")


def checks(s: Settings) -> list[tuple[bool, str]]:
    """(passed, line) for each thing publishing needs; the settings (and every compliance profile) loaded."""
    found: list[tuple[bool, str]] = [(True, "settings and compliance profiles load: " + "; ".join(
        f"{c} = {', '.join(names)}" for c, names in s.compliance.channels.items()))]
    if "x" in s.publish.channels:
        missing = [n for n in X_CREDENTIALS if getattr(s, n) is None]
        found.append((not missing, "X posting credentials set" if not missing else
                      f"X is in publish.channels but {', '.join(f'TAPEWATCH_{n.upper()}' for n in missing)} "
                      "is not set"))
    if "telegram" in s.publish.channels:
        ready = s.telegram_bot_token is not None and bool(s.publish.telegram_chat_id)
        found.append((ready, "Telegram bot token and channel set" if ready else
                      "Telegram is in publish.channels but TAPEWATCH_TELEGRAM_BOT_TOKEN or publish.telegram_chat_id "
                      "is not set"))
    found.append((True, f"language model: {s.llm.model}" if s.llm.model else
                  "no language model: briefs are deterministic data briefs (set llm.model for the crew)"))
    return found


def x_reminders(s: Settings) -> list[str]:
    """X's developer rules for an automated account, with the settings that enforce each."""
    pub = s.publish
    mentions = ", ".join(f"@{h.lstrip('@')}" for h in pub.x_allowed_mentions) or "none"
    return [
        "Label the account as automated: on X, Settings → Your account → Account information → Automation, "
        "naming the account that runs it. X's rules require the label on every bot account; tapewatch cannot "
        "set it for you.",
        "Replies: tapewatch posts threads of its own and never replies to anyone. Replying to other people's "
        "posts with AI-generated text needs X's prior approval: do not add reply automation without it.",
        f"Mentions: no unsolicited @mentions. Only publish.x_allowed_mentions ({mentions}) may be @mentioned; "
        "other quoted handles are written without the @.",
        f"Tags: at most {pub.x_max_cashtags} cashtags and {pub.x_max_hashtags} hashtags per post "
        "(publish.x_max_cashtags, publish.x_max_hashtags).",
        f"Duplicates: a post {pub.duplicate_threshold:.0%} like one sent within "
        f"{format_duration(pub.duplicate_window.total_seconds())} is refused (publish.duplicate_*).",
        f"Deleted posts: stored X posts that X no longer returns are deleted from memory every "
        f"{format_duration(s.x.compliance_every.total_seconds())} (x.compliance_every; X asks for 24 hours).",
    ]


@app.command()
def doctor() -> None:
    """Check that publishing is set up, and remind you of X's rules for automated accounts; exit 1 on a problem."""
    s = settings()
    results = checks(s)
    for passed, line in results:
        out.print(f"{'[green]ok[/green]  ' if passed else '[red]fix[/red] '} {line}", highlight=False, soft_wrap=True)
    if "x" in s.publish.channels:
        out.print("\n[bold]X's rules for automated accounts[/bold]")
        for line in x_reminders(s):
            out.print(f"- {line}", highlight=False, soft_wrap=True)
    out.print("\nCompliance profiles are starting points, not legal advice: `tapewatch compliance profiles`.")
    if not all(passed for passed, _ in results):
        raise typer.Exit(1)
