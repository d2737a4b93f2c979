"""A CPU and memory budget for one piece of work: run it in a forked child under rlimits.

The same mechanism as `pdftext` uses for big PDFs, for any picklable computation: the child
gets `RLIMIT_CPU` (CPU seconds) and `RLIMIT_AS` (address space) and sends its pickled result
through a pipe; the parent waits until a wall-clock deadline and kills the child after it.
Without `os.fork` (not POSIX) the work runs in-process, unbounded.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T")

MEMORY_HEADROOM = 1024 << 20  # bytes of address space the child may add to what it inherits
WALL_FACTOR = 3.0  # a busy machine: wall-clock deadline = CPU seconds × this + 1 s


@dataclass(frozen=True)
class Budget:
    """How much one computation may use: CPU seconds and extra address space in bytes."""

    cpu_seconds: float
    memory_bytes: int = MEMORY_HEADROOM

    @property
    def wall_seconds(self) -> float:
        return self.cpu_seconds * WALL_FACTOR + 1.0


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of `fn`, or `exceeded` (Spanish, for staff) when it ran out of budget."""

    value: T | None
    exceeded: str | None = None
    seconds: float = 0.0


def run_within(fn: Callable[[], T], budget: Budget) -> Outcome[T]:
    """Run `fn()` in a forked child under `budget`; never raises for the child's failures.

    Returns Outcome(value) on success; Outcome(None, reason) when the child ran out of CPU
    time, memory or wall time, or raised. An exception inside `fn` is reported in `exceeded`
    with its type, never propagated. `fn`'s result must be picklable.
    """
    started = time.monotonic()
    if not hasattr(os, "fork"):
        return Outcome(fn(), None, time.monotonic() - started)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(write_end, fn, budget)
    os.close(write_end)
    received: bytes | None = None
    try:
        received = _collect(read_end, started + budget.wall_seconds)
    finally:
        os.close(read_end)
        status = _reap(pid, kill=received is None)
    seconds = time.monotonic() - started
    if received is None:
        return Outcome(None, _over_time(budget), seconds)
    try:
        ok, value = pickle.loads(received) if received else (False, None)  # our own child
    except Exception:
        ok, value = False, None
    if ok:
        return Outcome(value, None, seconds)
    if status == -signal.SIGXCPU or status == -signal.SIGKILL:
        return Outcome(None, _over_time(budget), seconds)
    detail = f" ({value})" if isinstance(value, str) else ""
    return Outcome(None, f"el análisis excedió el límite de memoria o falló{detail}", seconds)


def _over_time(budget: Budget) -> str:
    return f"el análisis excedió el tiempo de proceso permitido ({budget.cpu_seconds:g} s de CPU)"


def _child(write_end: int, fn: Callable[[], object], budget: Budget) -> NoReturn:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        close_inherited(write_end)
        limit(budget)
        try:
            payload = pickle.dumps((True, fn()))
        except MemoryError:
            payload = pickle.dumps((False, "memoria agotada"))
        except Exception as exc:
            payload = pickle.dumps((False, type(exc).__name__))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        status = 0
    finally:
        os._exit(status)  # never run the parent's cleanup (atexit, pools, files) in the child


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
    """Cap the current process's address space at what it uses now plus `budget.memory_bytes`."""
    _set(resource.RLIMIT_AS, _current_address_space() + budget.memory_bytes)


def limit(budget: Budget) -> None:
    """Apply `budget` to the current process (rlimits never raised above a hard limit)."""
    limit_memory(budget)
    _set(resource.RLIMIT_CPU, int(budget.cpu_seconds) + 1)


def _set(which: int, value: int) -> None:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, hard if hard != resource.RLIM_INFINITY else value))


def _current_address_space() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 1 << 30


def _collect(fd: int, deadline: float) -> bytes | None:
    """Read the child's whole output, or None when the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int, *, kill: bool) -> int:
    """Wait for the child, first killing it when `kill` (it overran); its return code. A child
    that closed its pipe is exiting: it is waited for, not killed (its status tells why)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            if kill:
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 0
    return os.waitstatus_to_exitcode(status)
