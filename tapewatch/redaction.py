"""Configured secrets, and the redactor that keeps them (and their encoded forms) out of every line we print."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.text import Text

# No real key or token is this short; redacting a 2-letter test value would mangle every other word.
MIN_SECRET_LENGTH = 6
# Query parameters of a URL that carry credentials (e.g. a Chroma URL with ?token=…).
_CREDENTIAL_PARAMS = re.compile(r"(token|key|secret|password|passwd|auth|credential)", re.IGNORECASE)


def secret_values(settings: BaseModel) -> dict[str, str]:
    """Every secret in ``settings`` by name: each ``SecretStr`` (nested too) and passwords in database/Chroma URLs."""
    found: dict[str, str] = {}
    for name, value in _walk(settings, ""):
        if isinstance(value, SecretStr):
            found[name] = value.get_secret_value()
    for name in ("database_url", "memory.chroma_url"):
        url = _lookup(settings, name)
        if isinstance(url, str):
            for i, secret in enumerate(url_credentials(url)):
                found[f"{name}#{i}"] = secret
    return {k: v for k, v in found.items() if v}


def url_credentials(url: str) -> list[str]:
    """The secrets inside a URL: the password of ``user:pass@`` (also as basic auth), credential query values."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    values = [unquote(password)] if password else []
    if password:  # as basic auth sends it
        pair = f"{unquote(parts.username or '')}:{unquote(password)}"
        values.append(base64.b64encode(pair.encode()).decode())
    values += [v for k, v in parse_qsl(parts.query) if v and _CREDENTIAL_PARAMS.search(k)]
    return values


def mask_url(url: str) -> str:
    """``url`` with its password and credential query values replaced by ``***`` (the rest left readable)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{host}" if user else f"***@{host}"
    elif "@" in netloc:  # a bare token as the user part (https://TOKEN@host) is a credential too
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{k}=***" if _CREDENTIAL_PARAMS.search(k) else f"{k}={v}"
                     for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(netloc=netloc, query=query).geturl()


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), f"{prefix}{name}.")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{prefix}{i}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value


def _lookup(model: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        model = getattr(model, part, None)
    return model


def _forms(secret: str) -> set[str]:
    """How a secret shows up in logs: as is, URL-encoded (once, twice, as a form), repr- and JSON-escaped."""
    once = quote(secret, safe="")
    return {secret, once, quote(secret), quote_plus(secret), quote(once, safe=""), repr(secret)[1:-1],
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}


class Redactor:
    """Replaces every configured secret, in any of its usual encodings, by ``<redacted:NAME>``."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.names: dict[str, str] = {}
        for name, secret in sorted((secrets or {}).items()):
            if len(secret) < MIN_SECRET_LENGTH:
                continue
            for form in _forms(secret):
                self.names.setdefault(form.lower(), name)
        forms = sorted(self.names, key=len, reverse=True)  # longest first: a form may contain another
        self._pattern = re.compile("|".join(map(re.escape, forms)), re.IGNORECASE) if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: f"<redacted:{self.names[m.group(0).lower()]}>", text)


_active = Redactor()


def activate(redactor: Redactor) -> None:
    """Make ``redactor`` the one ``redact`` (and so logging and the CLI's consoles) uses."""
    global _active
    _active = redactor


def redact(text: str) -> str:
    """``text`` without any configured secret."""
    return _active(text)


class RedactingConsole(Console):
    """A rich ``Console`` that redacts every string it renders (markup, table cells, JSON) before wrapping it.

    Redacting before layout matters: a token folded across two lines of a table cell would slip past a
    filter on the finished output.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render ``text`` with secrets redacted."""
        return super().render_str(redact(text), **kwargs)

    def print_json(self, json: str | None = None, *, data: Any = None, **kwargs: Any) -> None:
        """Pretty-print JSON with secrets redacted."""
        import json as _json

        text = json if json is not None else _json.dumps(data, default=str)
        super().print_json(redact(text), **kwargs)
