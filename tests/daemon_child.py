"""`tapewatch run` for subprocess tests: the real daemon, posting schedule and bot wiring, with the fast embedder.

Run as ``python -m tests.daemon_child CONFIG``; prints each run's summary like ``tapewatch run`` does and
exits 2 with an ``error:`` line when the daemon stopped itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sources.errors import TapewatchError
from tapewatch import logs
from tapewatch.bot.service import attach
from tapewatch.daemon import Daemon
from tapewatch.jobs import Runtime
from tapewatch.settings import load_settings
from tests.fakes.embedder import HashEmbedder


class Running:
    """A daemon subprocess whose output is read as it comes (a full pipe would block its logging)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        if env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEWATCH_")}
            env.update(PYTHONPATH=os.pathsep.join(sys.path), COLUMNS="200")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def child(cls, config: Path) -> Running:
        """This module's daemon on ``config``."""
        return cls([sys.executable, "-m", "tests.daemon_child", str(config)])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, check: Callable[[], object], timeout: float, what: str) -> None:
        """Poll ``check`` until it holds; fail with the output if the daemon exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.proc.returncode}) waiting for {what}:\n"
                                     f"{self.wait(10)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.wait(0)}")
            time.sleep(0.05)

    def wait(self, timeout: float) -> str:
        """Wait for the exit (killing it after ``timeout``) and return everything it printed."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=10)
        return self.output


def main(config: str) -> int:
    """Serve until SIGTERM; the exit status ``tapewatch run`` would give."""
    settings = load_settings(Path(config))
    logs.configure(settings.log_level)
    runtime = Runtime(settings, embed=HashEmbedder())
    daemon = Daemon(runtime, on_result=lambda kind, summary: print(f"{kind}: {summary}", flush=True))
    try:
        for line in attach(daemon, runtime)[1]:
            print(line, flush=True)
        print("serving", flush=True)
        asyncio.run(daemon.serve())
    except TapewatchError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    finally:
        runtime.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
