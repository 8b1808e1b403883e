"""Durations as people read them, for every message and table ('24h', '7d', '2m 30s'); the lowest layer, so
publishing and the shell share one rule."""

from __future__ import annotations

from datetime import timedelta


def format_duration(seconds: float | timedelta) -> str:
    """A duration as people write it, and as ``parse_duration`` reads whole units: '15m', '24h', '7d', '0.2s',
    '2m 30s', '1d 6h' (never Python's '1 day, 0:00:00')."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    whole = round(seconds)
    # Whole hours up to two days read best in hours ("24h", "36h"); longer in days.
    if whole % 3600 == 0 and whole <= 2 * 86400:
        return f"{whole // 3600}h"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
        if len(parts) == 2:  # two units say enough: "1d 6h", not "1d 6h 3m 2s"
            break
    return " ".join(parts)
