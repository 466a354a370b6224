"""Waiting on other processes and threads: on a condition, never for a fixed time.

A deadline is the time a wait may take on an idle machine, stretched by the machine's load
when the wait begins (CI runs on two busy cores: at a load of 10 a 60 s wait gets 300 s). It
only costs time when something is broken, so it errs long.
"""
import os
import time

import pytest

MAX_STRETCH = 6.0


def patient(seconds: float) -> float:
    """`seconds`, stretched by the load per core (never shortened)."""
    load_per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * min(max(1.0, load_per_core), MAX_STRETCH)


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it answers something truthy; fail the test after `patient(timeout)`."""
    allowed = patient(timeout)
    deadline = time.monotonic() + allowed
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {allowed:.0f} s (idle-machine deadline {timeout} s) waiting for {message}")
        time.sleep(interval)
