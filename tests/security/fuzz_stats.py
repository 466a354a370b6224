"""Counters the schemathesis run fills and the conftest prints at the end of the session."""

FUZZ_STATS: dict = {"operations": set(), "examples": 0, "stateful_steps": 0, "failures": [], "statuses": {}}
