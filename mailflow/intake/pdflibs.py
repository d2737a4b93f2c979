"""The PDF libraries (pypdf, pyhanko's validation stack: ~0.7 s of CPU to import), loaded
with the first PDF a process reads, outside the message's CPU budget.

A reader child (mailflow.runners.sandbox) runs each message under `ITIMER_PROF`
(`limits.decide_cpu_seconds`, as low as 1 s); the import is the process's one-time cost, not
the message's: charged to the message, the first signed PDF of every fresh child (and so of
every child forked after one ran out of time) could be sent to staff unread.
"""

from __future__ import annotations

import importlib
import signal
import sys

PYPDF = "pypdf"
SIGNATURES = "mailflow.intake.signatures"  # pyhanko's validation stack


def preload(name: str) -> None:
    """Import module `name` if it is not loaded yet, with the CPU timer of the running task
    (`ITIMER_PROF`, when armed) paused meanwhile and then re-armed with what was left.
    Returns nothing; raises what the import raises."""
    if name in sys.modules:
        return
    left, interval = (
        signal.getitimer(signal.ITIMER_PROF) if hasattr(signal, "getitimer") else (0, 0)
    )
    if left:
        signal.setitimer(signal.ITIMER_PROF, 0)
    try:
        importlib.import_module(name)
    finally:
        if left:
            signal.setitimer(signal.ITIMER_PROF, left, interval)
