"""Public ids of briefs: what the archive's permalinks and the posts' links use, never the internal draft id.

A brief's public id is chosen when its first draft is written (``assign_public_id`` puts it in the draft's
``meta``, which edits carry over), so the posts can link to ``{publish.archive_url}/b/{public id}`` before
the brief is published and the link survives a reviewer's edit. A draft written without one gets an id
derived from its (random, never public) internal id. Here in ``memory/`` so the renderers in ``crew/`` can
use it; ``publish/archive.py`` serves the published briefs by it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import MutableMapping
from typing import Any

from memory.drafts import Draft

PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{8,40}")


def new_public_id() -> str:
    """A fresh random public id (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def assign_public_id(meta: MutableMapping[str, Any]) -> str:
    """The public id in a new draft's ``meta``, set to a fresh one when it has none; call before rendering links."""
    current = meta.get("public_id")
    if isinstance(current, str) and PUBLIC_ID.fullmatch(current):
        return current
    meta["public_id"] = new_public_id()
    return str(meta["public_id"])


def public_id(draft: Draft) -> str:
    """The public id of a draft's brief: the one in its ``meta``, else one derived from its internal id."""
    current = draft.meta.get("public_id")
    if isinstance(current, str) and PUBLIC_ID.fullmatch(current):
        return current
    return hashlib.sha256(b"tapewatch archive\0" + draft.id.encode()).hexdigest()[:20]


def permalink(archive_url: str | None, pid: str) -> str | None:
    """``{archive_url}/b/{pid}``, or None when no public archive is configured."""
    if not archive_url:
        return None
    return f"{archive_url.rstrip('/')}/b/{pid}"
