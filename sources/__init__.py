"""Ingest: fetch and parse feeds into ``Item``s."""
