"""Real servers for the benchmarks: a private Dovecot, a timed SMTP sink, fresh PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailflow.config import load_settings
from mailflow.ops.keys import keys_demo
from tests.support.dovecot import Dovecot, DovecotAccount, free_port, running_dovecot
from tests.support.fixtures_db import fresh_pg_database
from tests.support.mailservice import write_config
from tests.support.smtp_sink import SmtpSink, serving

REPO = Path(__file__).resolve().parent.parent
APPEND_CHUNK = 100  # messages per MULTIAPPEND command


@dataclass
class TimedSink(SmtpSink):
    """The test SMTP sink, also noting when each reply arrived (time.time())."""

    arrivals: list[tuple[float, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            with self.lock:
                self.arrivals.append((time.time(), bytes(envelope.original_content)))
        return answer


@contextlib.contextmanager
def dovecot() -> Iterator[Dovecot]:
    """A private Dovecot instance for the duration of the block (tests/support/dovecot.py's setup)."""
    with running_dovecot("mailflow-bench-dovecot-") as server:
        yield server


@contextlib.contextmanager
def smtp_sink() -> Iterator[TimedSink]:
    with serving(TimedSink(port=free_port())) as sink:
        yield sink


def append_all(account: DovecotAccount, raws: list[bytes], folder: str = "INBOX") -> float:
    """APPEND every message (MULTIAPPEND in chunks); return the seconds it took."""
    started = time.perf_counter()
    client = account.client()
    try:
        for i in range(0, len(raws), APPEND_CHUNK):
            client.multiappend(folder, raws[i : i + APPEND_CHUNK])
    finally:
        client.logout()
    return time.perf_counter() - started


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (dropped afterwards); yields its URL."""
    with fresh_pg_database("mailflow_bench") as url:
        yield url


def engine_config(
    tmp: Path,
    imap_url: str | None,
    smtp_url: str | None,
    *,
    trust_root: Path,
    database_url: str | None = None,
    **sections: Any,
) -> Path:
    """config.yaml for one engine run: the repository's, data in tmp, demo signing keys."""
    path = write_config(tmp, imap_url, smtp_url, signatures={"trust_roots": [str(trust_root)]})
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["database_url"] = database_url
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    keys_demo(load_settings(path, env={}))
    return path


def start_engine(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """`mailflow run [ARGS]` (web off) in a subprocess."""
    env = {**os.environ, "MAILFLOW_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    for key in ("MAILFLOW_DATABASE_URL", "MAILFLOW_IMAP_URL", "MAILFLOW_SMTP_URL"):
        env.pop(key, None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailflow", "run", "--no-web", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _hwm_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (the engine's reading sandboxes and companions)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def children_peak_kib(pid: int, seen: dict[int, int]) -> None:
    """Remember in `seen` (child pid → KiB) each child's own peak RSS so far."""
    for child in _children(pid):
        seen[child] = max(seen.get(child, 0), _hwm_kib(child))


def wait_rusage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int]:
    """Wait for the child; return (exit code, peak RSS in KiB)."""
    return wait_all([proc], timeout)[0]


def wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[tuple[int, int]]:
    """Wait for every child; (exit code, peak RSS in KiB) of each.

    The peak is each child's own VmHWM, polled while it runs: its rusage ru_maxrss would
    include this (bigger) parent's memory, which exec carries over on Linux. Each process's
    CPU seconds (user + system, its waited-for children included: the readers, the
    companions) are left on it as `proc.cpu_seconds`.
    """
    deadline = time.monotonic() + timeout
    peaks = [0] * len(procs)
    codes: list[int | None] = [None] * len(procs)
    while time.monotonic() < deadline:
        for i, proc in enumerate(procs):
            if codes[i] is not None:
                continue
            peaks[i] = max(peaks[i], _hwm_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.cpu_seconds = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
                codes[i] = proc.returncode = os.waitstatus_to_exitcode(status)
        if all(code is not None for code in codes):
            return [(int(code or 0), peak) for code, peak in zip(codes, peaks, strict=True)]
        time.sleep(0.02)
    for proc in procs:
        proc.kill()
    raise TimeoutError(f"mailflow run did not finish in {timeout:.0f} s")
