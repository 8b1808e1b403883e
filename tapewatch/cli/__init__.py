"""The ``tapewatch`` command line: the root app in ``root``, each group of commands in a module of its own.

Heavy libraries are imported inside commands so ``--help`` is instant.
"""

from tapewatch.cli.root import app, main

# Importing a command module registers its commands on ``app``.
from tapewatch.cli import (  # noqa: F401  # isort: skip
    analysis, compliance, costs, daemon, doctor, health, llm, market, memory, model, ops, publish, review, track,
    users, web,
)

__all__ = ["app", "main"]
