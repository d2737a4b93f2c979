"""Latency from IMAP APPEND to the reply reaching the SMTP server (service running, IDLE).

Run: .venv/bin/python bench/latency_bench.py [N]   (starts a private Dovecot and an aiosmtpd sink)
"""

from __future__ import annotations

import email
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller

from mailflow.config import load_settings
from mailflow.ops.runcmd import prepare
from mailflow.runners.service import run_forever
from tests.support.dovecot import _start, free_port
from tests.support.mail_requests import request
from tests.support.mailservice import write_config


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.got = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content)
        with self.got:
            self.at[str(msg["In-Reply-To"]).strip()] = time.perf_counter()
            self.got.notify_all()
        return "250 OK"


def _arrived(sink: Arrivals, mid: str) -> Callable[[], bool]:
    return lambda: mid in sink.at


def main(n: int = 100) -> None:
    base = Path(tempfile.mkdtemp(prefix="mailflow-bench-"))
    base.chmod(0o755)  # Dovecot's auth and mail processes run as other users
    (base / "imap").mkdir()
    dovecot = _start(base / "imap")
    account = dovecot.new_user()
    sink, port = Arrivals(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    config = write_config(base, account.url(), f"smtp://127.0.0.1:{port}")
    app = prepare(load_settings(config, env={}))
    stop = threading.Event()
    service = threading.Thread(target=run_forever, args=(app, stop), kwargs={"scheduler": False})
    service.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)  # let the poller enter IDLE
        client = account.client()
        for i in range(n):
            raw = request(i)
            mid = str(email.message_from_bytes(raw)["Message-ID"])
            t0 = time.perf_counter()
            client.append("INBOX", raw)
            with sink.got:
                sink.got.wait_for(_arrived(sink, mid), timeout=30)
            latencies.append(sink.at[mid] - t0)
            time.sleep(0.05)  # light load: one request at a time
        client.logout()
    finally:
        stop.set()
        service.join(30)
        controller.stop()
        dovecot.stop()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"APPEND→reply over {n} messages (IDLE, SQLite): "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
