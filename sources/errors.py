"""The exception tree every tapewatch package raises from.

It lives in ``sources`` because that is the bottom of the import direction
(sources → memory → crew → publish); every other package may import it.
"""

from __future__ import annotations


class TapewatchError(Exception):
    """Root of every error tapewatch raises on purpose."""


class ConfigError(TapewatchError):
    """Settings are missing, malformed or contradictory."""


class IngestError(TapewatchError):
    """A source could not be fetched or parsed; recorded against that source."""


class FetchError(IngestError):
    """The network step failed: timeout, connection error, HTTP error status, oversize body."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        #: True when no connection could be made at all (offline, DNS failure, refused).
        self.unreachable = unreachable


class FeedParseError(IngestError):
    """The fetched bytes are not a usable feed."""


class StoreError(TapewatchError):
    """The vector store or the state database refused or failed an operation."""


class LLMError(TapewatchError):
    """A language model call failed or replied in an unexpected shape."""


class PublishError(TapewatchError):
    """A publisher could not deliver a post."""
