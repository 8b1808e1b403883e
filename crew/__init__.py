"""Analyse: deterministic signals, narratives and the data brief; the analyst crew and its grounding checks."""
