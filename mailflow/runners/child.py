"""A companion process of one run: a job (IMAP ingestion, the sender) on another core.

The engine's processing, IMAP ingestion and the sender share one interpreter lock when they
are threads, so `run --once` used one core of two. A companion is forked from the run (it
inherits the settings, the open run lock and the code already imported, so it starts in
milliseconds), opens its own database connections, and talks to the run over a pipe: small
pickled messages both ways, then its job's result. It dies with the run (Linux
`PR_SET_PDEATHSIG`): a SIGKILLed run leaves no companion sending or storing on its own, exactly
as a killed thread would not. Without `os.fork` (or off Linux) the run keeps its threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailflow.app import App

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ChildError(RuntimeError):
    """A companion's job raised, or the companion ended without a result (killed, crashed)."""


def can_fork() -> bool:
    """True where companions work: `os.fork` and the parent-death signal (Linux)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


class Channel:
    """The companion's end of the pipe: what its job uses to talk to the run."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def send(self, message: Any) -> None:
        """Send one picklable message to the run."""
        self._conn.send(("message", message))

    def receive(self, timeout: float) -> list[Any]:
        """Every message the run has sent, waiting up to `timeout` seconds for the first;
        [] when none came. Raises EOFError when the run is gone."""
        messages: list[Any] = []
        if self._conn.poll(timeout):
            messages.append(self._conn.recv())
            while self._conn.poll(0):
                messages.append(self._conn.recv())
        return messages


class Child:
    """One forked companion running `job(channel)`; its return value is the result.

    `start()` forks; the run then `send`s messages, reads the companion's with `receive`, and
    collects the result with `result()` (which raises ChildError when the job failed).
    """

    def __init__(self, name: str, app: App, job: Callable[[Channel], Any]) -> None:
        self.name = name
        self.app = app
        self.job = job
        self.pid: int | None = None
        self._conn: Connection | None = None
        self._result: tuple[str, Any] | None = None

    def start(self) -> None:
        """Fork the companion (call from the thread that will outlive it: the parent-death
        signal fires when that thread ends). Raises OSError when the fork fails."""
        ours, theirs = Pipe(duplex=True)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the companion
            ours.close()
            _companion(self.name, self.app, self.job, theirs, parent)
        theirs.close()
        self.pid, self._conn = pid, ours

    @property
    def finished(self) -> bool:
        """True once the companion's result (or its end) has been received."""
        return self._result is not None or self._conn is None

    def send(self, message: Any) -> None:
        """Send one picklable message to the companion; a companion already gone is ignored
        (its end is reported by `result()`)."""
        if self._conn is not None and self._result is None:
            with contextlib.suppress(OSError, EOFError):
                self._conn.send(message)

    def receive(self, timeout: float) -> list[Any]:
        """The companion's messages, waiting up to `timeout` seconds for the first; [] when
        none came or the companion has finished (its result is kept for `result()`)."""
        conn = self._conn
        if conn is None or self._result is not None:
            return []
        messages: list[Any] = []
        try:
            ready = conn.poll(timeout)
            while ready:
                kind, value = conn.recv()
                if kind == "message":
                    messages.append(value)
                else:
                    self._result = (kind, value)
                    break
                ready = conn.poll(0)
        except (EOFError, OSError):
            self._result = ("lost", None)
        return messages

    def result(self) -> Any:
        """Wait for the companion's job to end and return its result; raises ChildError when
        it raised (with its traceback) or ended without one."""
        while self._result is None and self._conn is not None:
            self.receive(1.0)
        kind, value = self._result or ("lost", None)
        self._reap()
        if kind == "result":
            return value
        if kind == "error":
            raise ChildError(f"{self.name}: {value}")
        raise ChildError(f"{self.name}: el proceso terminó sin resultado")

    def _reap(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.pid is not None:
            pid, self.pid = self.pid, None
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _companion(
    name: str, app: App, job: Callable[[Channel], Any], conn: Connection, parent: int
) -> None:
    status = 1
    try:
        _die_with(parent)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if "database" in app.__dict__:  # the run's pooled connections stay the run's
            app.database.engine.dispose(close=False)
        try:
            outcome: tuple[str, Any] = ("result", job(Channel(conn)))
        except BaseException:
            outcome = ("error", traceback.format_exc(limit=8))
            log.error("proceso %s: %s", name, outcome[1])
        conn.send(outcome)
        status = 0
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()  # flush the log handlers this process wrote to
        os._exit(status)  # never run the run's cleanup (atexit, pools, files) in the companion


def _die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent ends; exit at once when the
    parent is already gone (it died between the fork and this call)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
