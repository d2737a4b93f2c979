"""Waiting in tests: for a condition, with bounds generous enough for a busy shared machine.

A bound here is a safety net against a hang, never the expected duration: on a loaded 2-core
machine shared by several test runs, work that takes one second alone can take a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

GENEROUS_SECONDS = 300.0  # waiting for a process or a condition that will happen
PROCESS_EXIT_SECONDS = 600.0  # a whole `mailflow run --once` over hundreds of messages
BUSY_MACHINE_SECONDS = 10.0  # "finished quickly": work bounded to ~1 s when the machine is quiet


def wait_for(
    predicate: Callable[[], object], seconds: float = GENEROUS_SECONDS, interval: float = 0.1
) -> bool:
    """Poll `predicate` until it is truthy (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
