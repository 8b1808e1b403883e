"""Settings of the web desk and public archive (`tapewatch web`, or inside `tapewatch run`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tapewatch.settings.durations import Duration, _positive


class WebSettings(BaseModel):
    """The desk (behind login) and the public pages, served by uvicorn."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False  # also serve the web desk inside `tapewatch run`, on the daemon's event loop
    host: str = "127.0.0.1"  # put a TLS reverse proxy in front of it for anything but loopback
    port: int = Field(default=8080, ge=1, le=65535)
    session_ttl: Duration = timedelta(hours=12)
    # Secure cookies: "auto" when the request came over https (as the proxy says in X-Forwarded-Proto).
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    # Proxies whose X-Forwarded-For / -Proto are believed (uvicorn's forwarded_allow_ips).
    trusted_proxies: list[str] = ["127.0.0.1"]
    login_limit: int = Field(default=5, ge=1, le=1000)  # failed logins per user, and per IP, in login_window
    login_window: Duration = timedelta(minutes=15)
    login_lock: Duration = timedelta(minutes=15)  # how long a user or IP is refused after too many failures
    page_size: int = Field(default=50, ge=5, le=500)  # drafts per desk queue page
    # Processes serving `tapewatch web` (pages are CPU-bound Python: one process uses one core). Inside
    # `tapewatch run` the desk always runs on the daemon's own event loop.
    workers: int = Field(default=1, ge=1, le=64)
    # Threads rendering pages per process, for the public pages and for the desk apart (tapewatch/web/lanes.py):
    # CPU-bound pages on more threads only fight over the GIL; a lane waiting on the database is the exception.
    public_threads: int = Field(default=2, ge=1, le=64)
    desk_threads: int = Field(default=2, ge=1, le=64)
    # /narratives computes the signals over the last 24 h (seconds on a busy store): it is served from one
    # computation for this long, so a crowd of readers costs one computation, not one each.
    narratives_ttl: Duration = timedelta(minutes=2)

    _check = field_validator("session_ttl", "login_window", "login_lock")(_positive)
