"""Long-lived child processes that run one task at a time under a per-task CPU and memory budget.

Forking for every message costs ~10 ms of CPU (page tables, copy-on-write faults); a child
forked once and fed tasks through a pipe costs well under 1 ms per task. Each task runs under
`ITIMER_PROF` (CPU seconds, default action of SIGPROF: terminate), the child under `RLIMIT_AS`;
the parent waits until a wall-clock deadline. A child that dies, overruns or fails is killed
and a fresh one is forked for the next task. Without `os.fork` tasks run in-process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn

from mailflow.errors import NotNow
from mailflow.runners.budget import Budget, Outcome, close_inherited, limit_memory

_LENGTH = struct.Struct("!Q")
Work = Callable[[Any], Any]


class Sandbox:
    """One child process running `work(task)` for each task sent; not thread-safe (one user)."""

    def __init__(self, work: Work, budget: Budget) -> None:
        self.work = work
        self.budget = budget
        self.pid: int | None = None
        self.to_child = self.from_child = -1
        self._finalizer: weakref.finalize[Any, Sandbox] | None = None

    def run(self, task: Any) -> Outcome[Any]:
        """Run `work(task)` in the child; Outcome(value), or Outcome(None, reason in Spanish)
        when the task ran out of CPU time, memory or wall time, or raised. Raises
        errors.NotNow when no child can be started (fork failed)."""
        started = time.monotonic()
        if not hasattr(os, "fork"):
            return Outcome(self.work(task), None, 0.0)
        if self.pid is None:
            try:
                self._spawn()
            except OSError as exc:  # EAGAIN, ENOMEM: the machine's trouble, not the message's
                raise NotNow(f"no se pudo iniciar el proceso de análisis ({exc})") from exc
        try:
            _send(self.to_child, pickle.dumps(task))
            reply = _receive(self.from_child, started + self.budget.wall_seconds)
        except OSError:
            reply = None
        seconds = time.monotonic() - started
        if reply is None:  # the child died (end of file) or overran the wall-clock deadline
            status = self.close(kill=seconds >= self.budget.wall_seconds)
            over = status in (-signal.SIGPROF, -signal.SIGXCPU, -signal.SIGKILL)
            return Outcome(None, _over_time(self.budget) if over else _failed(None), seconds)
        ok, value = pickle.loads(reply)  # written by our own child
        if ok:
            return Outcome(value, None, seconds)
        self.close()  # a failed task may leave the child in a bad state: start afresh
        return Outcome(None, _failed(value), seconds)

    def close(self, *, kill: bool = True) -> int:
        """End the child (if any): closing its pipe makes it exit; `kill` does not wait for
        that. Returns its exit status as a return code."""
        pid, self.pid = self.pid, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                os.close(fd)
        self.to_child = self.from_child = -1
        return _kill(pid, kill=kill) if pid is not None else 0

    def _spawn(self) -> None:
        task_read, task_write = os.pipe()
        reply_read, reply_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(task_write)
            os.close(reply_read)
            _child(task_read, reply_write, self.work, self.budget)
        os.close(task_read)
        os.close(reply_write)
        self.pid, self.to_child, self.from_child = pid, task_write, reply_read
        self._finalizer = weakref.finalize(self, _cleanup, pid, task_write, reply_read)


class SandboxPool:
    """Sandboxes for concurrent callers (service workers, web threads): each caller borrows an
    idle one, or a new one is forked; they are reused, never shared at the same time."""

    def __init__(self, work: Work, budget: Budget) -> None:
        self.work = work
        self.budget = budget
        self._idle: list[Sandbox] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Sandbox]:
        """Context manager yielding an idle sandbox (or a new one, its child forked on first
        use) for this caller alone; it goes back to the idle list on exit, even after an error."""
        with self._lock:
            box = self._idle.pop() if self._idle else Sandbox(self.work, self.budget)
        try:
            yield box
        finally:
            with self._lock:
                self._idle.append(box)

    def run(self, task: Any) -> Outcome[Any]:
        """Run one task in a borrowed sandbox (see Sandbox.run)."""
        with self.borrow() as box:
            return box.run(task)


def _child(task_read: int, reply_write: int, work: Work, budget: Budget) -> NoReturn:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGPROF, signal.SIG_DFL)  # CPU budget spent: the child dies
        close_inherited(task_read, reply_write)
        limit_memory(budget)
        while True:
            payload = _receive(task_read, None)
            if payload is None:  # the parent closed the pipe (or died): done
                status = 0
                break
            task = pickle.loads(payload)  # sent by our own parent
            signal.setitimer(signal.ITIMER_PROF, budget.cpu_seconds)
            try:
                reply = (True, work(task))
            except MemoryError:
                reply = (False, "memoria agotada")
            except Exception as exc:
                reply = (False, type(exc).__name__)
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            _send(reply_write, pickle.dumps(reply))
    finally:
        os._exit(status)  # never run the parent's cleanup (atexit, pools, files) in the child


def _send(fd: int, payload: bytes) -> None:
    data = memoryview(_LENGTH.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _receive(fd: int, deadline: float | None) -> bytes | None:
    """One length-prefixed message, or None on end of file or when the deadline passes."""
    header = _read_exactly(fd, _LENGTH.size, deadline)
    if header is None:
        return None
    (size,) = _LENGTH.unpack(header)
    return _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _kill(pid: int, *, kill: bool = True) -> int:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            if kill:
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        return 0
    return os.waitstatus_to_exitcode(status)


def _cleanup(pid: int, to_child: int, from_child: int) -> None:
    for fd in (to_child, from_child):
        with suppress(OSError):
            os.close(fd)
    _kill(pid)


def _over_time(budget: Budget) -> str:
    return f"el análisis excedió el tiempo de proceso permitido ({budget.cpu_seconds:g} s de CPU)"


def _failed(detail: object) -> str:
    extra = f" ({detail})" if isinstance(detail, str) else ""
    return f"el análisis excedió el límite de memoria o falló{extra}"
