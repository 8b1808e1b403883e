"""Analyse: signals and the agent crew (not built yet)."""
