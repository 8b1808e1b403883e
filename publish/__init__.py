"""Review and publish: drafts, outbox and publishers (not built yet)."""
