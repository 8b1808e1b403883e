"""The shell: settings, CLI and the wiring of real clients."""

__version__ = "0.1.0"
