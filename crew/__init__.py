"""Analyse: deterministic signals, narratives and the data brief (the agent crew comes later)."""
