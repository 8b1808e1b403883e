"""The Telegram bot: commands and access (``telegram``), limits, review cards and actions, wiring into the daemon."""
