"""The web desk (review behind login) and the public archive of published briefs."""
