"""Logging setup: readable lines by default, JSON lines on request, and no configured secret in any of them.

Secrets are redacted at the logging layer, in two places: a record factory cleans every record as it is
made (so handlers added later, by a library or by pytest, only ever see clean text), and a filter on every
handler cleans what the factory could not know about (records built by hand) and drops the raw exception
once its redacted text is kept, so a handler that renders tracebacks itself cannot print the original.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from tapewatch import redaction
from tapewatch.redaction import Redactor, activate, redact

_FORMATTER = logging.Formatter()
_base_factory = logging.getLogRecordFactory()


class JsonFormatter(logging.Formatter):
    """One JSON object per log record."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_text or record.exc_info:
            payload["exc"] = redact(record.exc_text or self.formatException(record.exc_info))  # type: ignore[arg-type]
        return json.dumps(payload, ensure_ascii=False)


class RedactFilter(logging.Filter):
    """Replace configured secrets in a record's message, exception text and stack before a handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record, keep_exc_info=False)
        return True


_CREWAI_LOGGERS = frozenset({"crewai", "crewai_core", "crewai_cli", "crewai_tools"})


class _CrewAIRecords(logging.Filter):
    """Drop what crewAI logs (its own loggers, and the root logger from crewAI's code) unless debugging.

    A failed crew run is reported once, as an ``LLMError`` with a hint; crewAI's ERROR lines about the same
    failure ("Error executing listener …") would repeat it in other words.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] in _CREWAI_LOGGERS:
            return False
        return record.name != "root" or "/crewai/" not in record.pathname.replace("\\", "/")


def _redact_record(record: logging.LogRecord, keep_exc_info: bool = True) -> None:
    redactor = redaction._active
    if not redactor or (getattr(record, "_tapewatch_redacted", None) is redactor and keep_exc_info):
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging would print msg and args raw in its own error report
        message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redactor(message), ()
    clean = redactor(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[0] is not None:
        text = record.exc_text or _FORMATTER.formatException(record.exc_info)
        if redactor(text) != text or record.exc_text:
            record.exc_text = redactor(text)
            if not keep_exc_info:
                record.exc_info = None
    elif record.exc_text:
        record.exc_text = redactor(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor(record.stack_info)
    record._tapewatch_redacted = redactor


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redact_record(record)
    return record


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))


def install_redaction(secrets: Mapping[str, str]) -> None:
    """Redact ``secrets`` from every log record, handler, uncaught traceback and CLI console from now on."""
    activate(Redactor(secrets))
    logging.setLogRecordFactory(_factory)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    redacting = RedactFilter()
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactFilter) for f in handler.filters):
                handler.addFilter(redacting)


def configure(level: str = "WARNING", json_lines: bool = False, secrets: Mapping[str, str] | None = None) -> None:
    """Send tapewatch's logs to stderr at ``level``, with ``secrets`` (name → value) redacted everywhere."""
    handler = logging.StreamHandler()
    handler._tapewatch = True  # type: ignore[attr-defined]
    if level != "DEBUG":
        handler.addFilter(_CrewAIRecords())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    # Replace our own earlier handler, not ones others attached (a test's capture handler, a service's).
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_tapewatch", False)] + [handler]
    root.setLevel(level)
    install_redaction(secrets or {})
    # Third-party chatter stays quiet unless we are debugging.
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
