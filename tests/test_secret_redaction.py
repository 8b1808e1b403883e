"""No configured secret in any log line, at any level: real PTB, tweepy (OAuth 1.0a and bearer), httpx, the
openai SDK under crewAI and Chroma's client log at DEBUG while tapewatch's logging redacts every secret."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from pydantic import SecretStr

from memory.state import StateDB
from publish.channel import Rejected
from publish.review import ReviewQueue
from publish.telegram_publisher import TelegramPublisher
from sources.errors import StoreError
from tapewatch import clients, logs, redaction
from tapewatch.redaction import Redactor, mask_url, secret_values
from tapewatch.settings import LLMSettings, MemorySettings, Settings, XSettings
from tests.fakes.llm_server import Reply, serving_llm
from tests.fakes.publishing import add_draft, make_settings
from tests.fakes.telegram_api import CHANNEL, serving_telegram
from tests.fakes.x_api import serving_x

GOOD_TOKEN = "7654321:AAF-realToken_x9Qz"
# Values with characters that URL- and OAuth-encoding change, so the encoded forms are exercised too.
SECRETS = {
    "telegram_bot_token": "9999999:AAH-rejected_Token-0w",
    "x_consumer_key": "ck/Key+with=chars~9Zq",
    "x_consumer_secret": "cs-Secret/of+the=app77",
    "x_access_token": "1234567-accessTOKEN+abc/def",
    "x_access_token_secret": "ats-Secret=last/one88",
    "x_bearer_token": "AAAAbearer%2Btoken/withSlash",
    "llm_api_key": "sk-test-llmKEY+secret/0123",
    "coingecko_api_key": "CG-apiKEY-0123456789",
    "chroma_token": "chroma-token-secret-42",
}
CHROMA_PASSWORD = "chromaPass:word@1"


def forms(value: str) -> set[str]:
    once = quote(value, safe="")
    return {value, once, quote_plus(value), quote(once, safe=""), value.replace(":", "%3A")}


def leaks(text: str, values: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in values.items():
        hits = [f for f in forms(value) if f.lower() in text.lower()]
        if hits:
            found[name] = hits
    return found


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put logging (handlers, levels, record factory, hooks, redactor) back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "chromadb", "urllib3", "tweepy.client")}
    factory, hook, thread_hook, active = (logging.getLogRecordFactory(), sys.excepthook, threading.excepthook,
                                          redaction._active)
    yield
    root.handlers[:], root.level = handlers, level
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)
    logging.setLogRecordFactory(factory)
    sys.excepthook, threading.excepthook = hook, thread_hook
    redaction.activate(active)


def test_redactor_replaces_every_encoding_and_leaves_other_text() -> None:
    secret = "ab/cd+ef=gh:ij"
    redact = Redactor({"llm_api_key": secret, "short": "at"})
    text = (f"raw {secret} once {quote(secret, safe='')} form {quote_plus(secret)} twice "
            f"{quote(quote(secret, safe=''), safe='')} lower {quote(secret, safe='').lower()} "
            f"repr {[secret]!r} created at noon")
    clean = redact(text)
    assert leaks(clean, {"k": secret}) == {}
    assert clean.count("<redacted:llm_api_key>") == 6
    assert clean.endswith("created at noon")  # a 2-letter value is not treated as a secret


def test_json_lines_and_exceptions_are_redacted(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json_lines=True, secrets={"llm_api_key": "sk-json-secret-123"})
    try:
        raise RuntimeError("server said: bad key sk-json-secret-123")
    except RuntimeError:
        logging.getLogger("tapewatch.test").exception("call failed with %s", "sk-json-secret-123")
    err = capsys.readouterr().err
    assert "sk-json-secret-123" not in err
    # The message, and in the traceback the source line and the exception text.
    assert err.count("<redacted:llm_api_key>") == 3 and '"exc": "Traceback' in err


def test_secret_values_cover_nested_secrets_and_url_passwords(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, telegram_bot_token=SecretStr(GOOD_TOKEN),
                        database_url="postgresql+psycopg://tw:db%2Fpass%40word@db.internal/tapewatch",
                        memory=MemorySettings(chroma_url=f"https://u:{quote(CHROMA_PASSWORD, safe='')}@c.example"
                                                         "?token=qtoken-secret-9"))
    values = set(secret_values(settings).values())
    assert {GOOD_TOKEN, "db/pass@word", CHROMA_PASSWORD, "qtoken-secret-9"} <= values
    assert mask_url("https://u:p4ss@c.example:8000/x?token=abc&tenant=t") == "https://u:***@c.example:8000/x?token=***&tenant=t"
    assert mask_url("http://TOKEN123@chroma:8000") == "http://***@chroma:8000"


def test_every_secret_is_redacted_at_debug_through_real_clients(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving_x() as x, serving_telegram(GOOD_TOKEN) as tg, serving_llm() as llm:
        settings = make_settings(tmp_path, x.base_url, tg.base_url).model_copy(update={
            **{k: SecretStr(v) for k, v in SECRETS.items()},
            "memory": MemorySettings(chroma_url=f"http://u:{quote(CHROMA_PASSWORD, safe='')}@127.0.0.1:9"),
            "llm": LLMSettings(model="openai/fake-model", base_url=llm.base_url, max_retries=0),
            "x": XSettings(api_base_url=x.base_url),
        })
        llm.script(None, Reply(content="hi"))
        secrets = secret_values(settings) | {"good_token": GOOD_TOKEN}
        logs.configure("DEBUG", secrets=secrets)
        caplog.set_level(logging.DEBUG)
        log = logging.getLogger("tapewatch.test")

        # PTB with a token the Bot API rejects, then with the right one (URLs carry /bot<token>/).
        rejected = TelegramPublisher(clients.telegram_bot(settings), CHANNEL)
        with pytest.raises(Rejected) as caught:
            asyncio.run(rejected.open())
        log.error("publish run failed: %s", caught.value.__cause__, exc_info=caught.value)
        good = settings.model_copy(update={"telegram_bot_token": SecretStr(GOOD_TOKEN)})

        async def send() -> None:
            publisher = TelegramPublisher(clients.telegram_bot(good), CHANNEL)
            await publisher.open()
            await publisher.send("<b>hello</b>", None)
            await publisher.close()

        asyncio.run(send())
        assert tg.messages, "the message should have reached the fake Bot API"
        # tweepy with OAuth 1.0a (oauthlib logs the consumer key and access token at DEBUG), and with a bearer.
        clients.x_poster(settings).create_tweet(text="hello from the redaction test", user_auth=True)
        logging.getLogger("tweepy.client").setLevel(logging.DEBUG)
        x.add_user("somebody")
        clients.x_client(settings).get_user(username="somebody")
        with clients.coingecko_client(settings) as http:  # the key rides in a header
            http.get(llm.base_url + "/ping")
        # crewAI → openai SDK → httpx with the API key.
        clients.crew_llms(settings)["researcher"].call("say hi")
        # Chroma's client, with a password in its URL, against nothing listening.
        with pytest.raises(StoreError) as store_error:  # basic auth from the URL (a token would clash with it)
            clients.chroma_client(settings.model_copy(update={"chroma_token": None}))
        log.exception("vector store: %s", store_error.value, exc_info=store_error.value)
        log.warning("token in args %s and in a URL %s", GOOD_TOKEN,
                    f"https://api.telegram.org/bot{quote(GOOD_TOKEN, safe='')}/getMe")

    text = caplog.text + capsys.readouterr().err
    assert leaks(text, SECRETS | {"good": GOOD_TOKEN, "chroma_password": CHROMA_PASSWORD}) == {}
    # The libraries did log them: what they logged is there, masked.
    for name in ("telegram_bot_token", "x_consumer_key", "x_access_token", "good_token"):
        assert f"<redacted:{name}>" in text, name
    assert "Traceback" in text  # tracebacks are kept, cleaned
    assert all(r.exc_info is None or "<redacted" not in (r.exc_text or "") for r in caplog.records)


def test_the_cli_at_debug_prints_no_secret(tmp_path: Path) -> None:
    """`tapewatch publish` in a subprocess at DEBUG, secrets from a secrets directory, token rejected then good."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    with serving_x() as x, serving_telegram(GOOD_TOKEN) as tg:
        config = tmp_path / "t.toml"
        config.write_text(
            f'data_dir = "{data}"\nlog_level = "DEBUG"\n[review]\nreviewers = ["alice"]\n'
            f'[publish]\nchannels = ["x", "telegram"]\ntelegram_chat_id = "{CHANNEL}"\ntimeout = "2s"\n'
            f'reconcile_settle = "0s"\nx_base_url = "{x.base_url}"\ntelegram_base_url = "{tg.base_url}"\n')
        state = StateDB(f"sqlite:///{data / 'state.db'}")
        for tag in ("a", "b"):
            draft = add_draft(state, tag, posts=2)
            ReviewQueue(state, reviewers=["alice"]).approve(draft.id, "alice")
        state.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")} | {"COLUMNS": "60"}
        outputs = []
        for token in (SECRETS["telegram_bot_token"], GOOD_TOKEN):
            for name, value in SECRETS.items():
                (secrets_dir / f"tapewatch_{name}").write_text(value + "\n")
            (secrets_dir / "tapewatch_telegram_bot_token").write_text(token)
            proc = subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "--secrets-dir",
                                   str(secrets_dir), "publish"], capture_output=True, text=True, env=env, timeout=120)
            outputs.append((proc.returncode, proc.stdout + proc.stderr))
            proc = subprocess.run([sys.executable, "-m", "tapewatch", "--config", str(config), "--secrets-dir",
                                   str(secrets_dir), "publish", "outbox"], capture_output=True, text=True, env=env,
                                  timeout=120)
            outputs.append((proc.returncode, proc.stdout + proc.stderr))
        assert tg.messages, "the second run should have published to the fake Bot API"
    text = "\n".join(out for _, out in outputs)
    assert leaks(text, SECRETS | {"good": GOOD_TOKEN}) == {}, text[-3000:]
    assert "Telegram rejected the bot token" in outputs[0][1]
    for name in ("telegram_bot_token", "x_consumer_key", "x_access_token"):
        assert f"<redacted:{name}>" in text, name
