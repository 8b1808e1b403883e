"""The dependency set resolves as pyproject intends: a current tweepy next to crewAI (see the oauthlib note)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest


def _tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())


@pytest.mark.slow
def test_tweepy_with_x_api_v2_and_crewai_import_together() -> None:
    # crewAI 1.15.27+ wants oauthlib>=4 and tweepy 4.16+ wants oauthlib<4; an unpinned resolver quietly
    # picks tweepy 4.5 (2022), whose Client lacks parts of API v2. Both must import in one interpreter.
    code = ("import tweepy, crewai, oauthlib; "
            "print(tweepy.__version__, crewai.__version__, oauthlib.__version__, hasattr(tweepy, 'Client'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true",
                                 "CREWAI_TRACING_ENABLED": "false"})
    assert result.returncode == 0, result.stderr[-2000:]
    tweepy_v, crewai_v, oauthlib_v, has_client = result.stdout.split()
    assert _tuple(tweepy_v) >= (4, 16) and has_client == "True"
    assert _tuple(oauthlib_v) < (4,)
    assert (1, 15) <= _tuple(crewai_v) < (1, 15, 27)
    assert _tuple(version("tweepy")) == _tuple(tweepy_v)
