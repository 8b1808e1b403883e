"""Logging setup: readable lines by default, JSON lines on request."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """One JSON object per log record."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class _CrewAIRootRecords(logging.Filter):
    """Drop what crewAI logs through the root logger (it has no logger of its own) unless debugging.

    A failed LLM call is reported once, as an ``LLMError``; crewAI's own ERROR lines would repeat it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root" or "/crewai/" not in record.pathname.replace("\\", "/")


def configure(level: str = "WARNING", json_lines: bool = False) -> None:
    """Send tapewatch's logs to stderr at ``level``."""
    handler = logging.StreamHandler()
    if level != "DEBUG":
        handler.addFilter(_CrewAIRootRecords())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays quiet unless we are debugging.
    for noisy in ("httpx", "httpcore", "chromadb", "sentence_transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
