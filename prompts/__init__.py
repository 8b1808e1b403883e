"""Agent and task prose for the crew, shipped as package data."""
