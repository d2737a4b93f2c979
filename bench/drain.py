"""Memory while draining a large mailbox: `mailflow run --once` over N/10 and N messages.

Each message is a request with ~20 KB of quoted history (tests/runners/test_memory.py's `_padded`), so
holding them would show. Peak RSS is the engine process's own high-water mark (VmHWM), polled
while it runs, and the largest of its children's (the forked ingestion and sender companions,
the reading sandboxes); neither should grow with the size of the mailbox.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.servers import (
    TimedSink,
    append_all,
    children_peak_kib,
    engine_config,
    start_engine,
    wait_all,
)
from tests.runners.test_memory import _padded
from tests.support.dovecot import Dovecot

MIB = 1 << 20


def _one(server: Dovecot, sink: TimedSink, kit: Any, count: int, tmp: Path) -> dict[str, Any]:
    account = server.new_user()
    for start in range(0, count, 5000):  # never hold the whole mailbox in this process
        append_all(account, [_padded(i) for i in range(start, min(count, start + 5000))])
    sink.messages.clear()
    sink.arrivals.clear()
    tmp.mkdir(parents=True, exist_ok=True)
    config = engine_config(tmp, account.url(), sink.url, trust_root=kit.ca_pem)
    started = time.perf_counter()
    proc = start_engine(config, "--once", log=tmp / "engine.log")
    children: dict[int, int] = {}
    watcher = threading.Thread(target=_watch_children, args=(proc, children), daemon=True)
    watcher.start()
    [(code, peak_kib)] = wait_all([proc], 600 + count / 5)
    watcher.join()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError((tmp / "engine.log").read_text()[-3000:])
    replies = len(sink.arrivals)
    sink.messages.clear()
    sink.arrivals.clear()
    return {
        "messages": count,
        "replies": replies,
        "wall_s": round(wall, 1),
        "wall_messages_per_s": round(count / wall, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        # the forked companions (ingestion, sender) and reading sandboxes, each its own peak
        "children_peak_rss_mib": round(max(children.values(), default=0) / 1024, 1),
        "children": len(children),
    }


def _watch_children(proc: Any, seen: dict[int, int]) -> None:
    while proc.poll() is None:
        children_peak_kib(proc.pid, seen)
        time.sleep(0.5)


def drain_scaling(
    server: Dovecot, sink: TimedSink, kit: Any, count: int
) -> dict[str, dict[str, Any]]:
    """Drain count/10 then count messages with `run --once` (fresh mailbox and data each)."""
    small = max(1, count // 10)
    with tempfile.TemporaryDirectory(prefix="mailflow-drain-") as tmp:
        return {
            f"drain-{small}": _one(server, sink, kit, small, Path(tmp) / "small"),
            f"drain-{count}": _one(server, sink, kit, count, Path(tmp) / "large"),
        }
