"""Loopback fakes used by the tests and benchmarks."""
