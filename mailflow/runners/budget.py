"""A CPU and memory budget for one piece of work, and the process limits that enforce it."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MEMORY_HEADROOM = 1024 << 20  # bytes of address space a child may add to what it inherits
WALL_FACTOR = 3.0  # a busy machine: wall-clock deadline = CPU seconds × this + 1 s


@dataclass(frozen=True)
class Budget:
    """How much one computation may use: CPU seconds and extra address space in bytes."""

    cpu_seconds: float
    memory_bytes: int = MEMORY_HEADROOM

    @property
    def wall_seconds(self) -> float:
        """Wall-clock seconds allowed: the CPU budget (seconds) times WALL_FACTOR, plus one second
        of start-up slack.
        """
        return self.cpu_seconds * WALL_FACTOR + 1.0


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of a computation, or `exceeded` (Spanish, for staff) when it ran out of
    budget or failed; `seconds` is the wall-clock time it took."""

    value: T | None
    exceeded: str | None = None
    seconds: float = 0.0


def close_inherited(*keep: int) -> None:
    """Close every descriptor but stdio and `keep`: a child (even orphaned, its parent killed)
    must not hold the parent's database files, sockets or run lock (flock)."""
    top = int(os.sysconf("SC_OPEN_MAX")) if hasattr(os, "sysconf") else 4096
    start = 3
    for fd in sorted(keep):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, max(start + 1, top))


def limit_memory(budget: Budget) -> None:
    """Cap the current process's address space at what it uses now plus `budget.memory_bytes`
    (never above an existing hard limit)."""
    value = _current_address_space() + budget.memory_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(resource.RLIMIT_AS, (value, hard))


def _current_address_space() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 1 << 30
