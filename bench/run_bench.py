"""End-to-end benchmark: corpus → real Dovecot → `mailflow run` → real SMTP sink.

Usage: .venv/bin/python bench/run_bench.py [-n 1000] [--cargo 300] [--latency-seconds 30]
       [--only sqlite-sin_pdf,helpdesk-sin_pdf,pg2-sin_pdf,...] [--drain 50000] [--repeat 3]
With --repeat K every scenario runs K times on fresh mailboxes and the table shows the run with
the median msg/s (docs/s for cargo bursts); the targets of the throughput issue are checked last.
The peer (helpdesk-sin_pdf) is django-helpdesk 2.6.1 from PyPI, installed on first use into
bench/.peer/ (bench/peer_helpdesk.py) and run on the same corpus, Dovecot and SMTP sink.
Prints a table and writes bench/results/run.json (and drain.json with --drain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import MIX, CachedKit, build, new_kit  # noqa: E402
from bench.measure import engine_phases, in_reply_to, percentiles, raw_limit  # noqa: E402
from bench.servers import (  # noqa: E402
    TimedSink,
    append_all,
    dovecot,
    engine_config,
    pg_database,
    smtp_sink,
    start_engine,
    wait_all,
    wait_rusage,
)
from mailflow.store.db import Database  # noqa: E402
from tests.support.dovecot import Dovecot  # noqa: E402

CORPORA: dict[str, dict[str, float]] = {
    "sin_pdf": {"sin_pdf": 1.0},
    "cargo": {"cargo": 1.0},
    "mixto": dict(MIX),
}
SCENARIOS = (
    ("sqlite", 1, "sin_pdf"),
    ("sqlite", 1, "cargo"),
    ("sqlite", 1, "mixto"),
    ("pg", 1, "sin_pdf"),
    ("pg", 2, "sin_pdf"),
    ("pg", 1, "cargo"),
    ("pg", 2, "cargo"),
)
RUN_TIMEOUT = 3600.0


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str | None]:
    if kind == "pg":
        with pg_database() as url:
            yield url
    else:
        yield None  # SQLite in the run's data_dir


def burst(
    server: Dovecot,
    sink: TimedSink,
    kit: CachedKit,
    raws: list[bytes],
    db_kind: str,
    workers: int,
) -> dict[str, Any]:
    """Load `raws` into a fresh mailbox, run `workers` × `mailflow run --once`, measure."""
    account = server.new_user()
    append_s = append_all(account, raws)
    limit = raw_limit(account)
    sink.messages.clear()
    sink.arrivals.clear()
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as name, ExitStack() as stack:
        tmp = Path(name)
        url = stack.enter_context(database(db_kind, tmp))
        config = engine_config(
            tmp, account.url(), sink.url, trust_root=kit.ca_pem, database_url=url
        )
        log = tmp / "engine.log"
        started = time.perf_counter()
        procs = [start_engine(config, "--once", log=log) for _ in range(workers)]
        waited = wait_all(procs, RUN_TIMEOUT)
        wall = time.perf_counter() - started
        if any(code != 0 for code, _ in waited):
            raise RuntimeError(f"mailflow run failed: {log.read_text()[-3000:]}")
        db_url = url or f"sqlite:///{tmp / 'data' / 'mailflow.db'}"
        db = Database(db_url)
        try:
            phases = engine_phases(db, sink.arrivals)
        finally:
            db.dispose()
    phases.update(
        {
            "append_s": round(append_s, 3),
            "wall_s": round(wall, 3),
            "wall_messages_per_s": round(len(raws) / wall, 1),
            "peak_rss_mib": [round(rss / 1024, 1) for _, rss in waited],
            "cpu_ms_per_message": round(
                1000 * sum(getattr(p, "cpu_seconds", 0.0) for p in procs) / len(raws), 2
            ),
            "raw_limit": limit,
        }
    )
    if limit["messages_per_s"] and phases["messages_per_s"]:
        phases["engine_over_limit"] = round(phases["messages_per_s"] / limit["messages_per_s"], 3)
    return phases


def peer_burst(server: Dovecot, sink: TimedSink, raws: list[bytes]) -> dict[str, Any]:
    """django-helpdesk's `get_email` on a fresh mailbox holding `raws` (the same corpus)."""
    from bench.peer_helpdesk import drain

    account = server.new_user()
    append_all(account, raws)
    limit = raw_limit(account)
    sink.messages.clear()
    sink.arrivals.clear()
    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as name:
        run = drain(
            Path(name),
            imap_host=account.host,
            imap_port=account.port,
            user=account.user,
            password=account.password,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            messages=len(raws),
        )
    return {
        "messages": len(raws),
        "replies": len(sink.arrivals),
        "wall_s": round(run.seconds, 3),
        "wall_messages_per_s": run.messages_per_s,
        "messages_per_s": run.messages_per_s,
        "raw_limit": limit,
    }


def light_load(
    server: Dovecot, sink: TimedSink, kit: CachedKit, raws: list[bytes], rate: float
) -> dict[str, Any]:
    """The service (`mailflow run`, IMAP IDLE) fed `rate` messages/s: arrival→reply latency."""
    account = server.new_user()
    sink.messages.clear()
    sink.arrivals.clear()
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-") as name:
        tmp = Path(name)
        config = engine_config(tmp, account.url(), sink.url, trust_root=kit.ca_pem)
        log = tmp / "engine.log"
        proc = start_engine(config, log=log)
        time.sleep(3.0)  # start-up (imports, migrations, first IMAP login) is not latency
        client = account.client()
        sent: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i, raw in enumerate(raws):
                wait = started + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sent[_message_id(raw)] = time.time()
                client.append("INBOX", raw)
        finally:
            client.logout()
        deadline = time.monotonic() + 120
        while len(sink.arrivals) < len(raws) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, rss = wait_rusage(proc, 60)
    replies = {in_reply_to(raw): at for at, raw in sink.arrivals}
    latency = [replies[m] - sent[m] for m in sent if m in replies]
    return {
        "rate_per_s": rate,
        "messages": len(raws),
        "replies": len(latency),
        "latency_s": percentiles(latency),
        "peak_rss_mib": round(rss / 1024, 1),
    }


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].splitlines():
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median of `runs` (the lower middle one for an even count),
    with every run's `key` kept under "runs" so the spread is visible."""
    ordered = sorted(runs, key=lambda r: r.get(key) or 0.0)
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        chosen["runs"] = [r.get(key) for r in runs]
    return chosen


def targets(results: dict[str, dict[str, Any]]) -> str:
    """The throughput issue's targets checked against this run's results, one line each
    ("sí"/"no"/"no medido")."""
    sqlite, peer = results.get("sqlite-sin_pdf", {}), results.get("helpdesk-sin_pdf", {})
    cargo = results.get("sqlite-cargo", {})
    pg1, pg2 = results.get("pg1-sin_pdf", {}), results.get("pg2-sin_pdf", {})
    latency = results.get("latencia", {}).get("latency_s", {})
    drains = sorted(
        (r["messages"], r["peak_rss_mib"]) for n, r in results.items() if n.startswith("drain-")
    )

    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 2) if a and b else None

    rows = [
        ("SQLite sin PDF ≥ 350 msg/s", sqlite.get("messages_per_s"), 350.0, True),
        ("≥ 0,25 del límite bruto", sqlite.get("engine_over_limit"), 0.25, True),
        (
            "≥ 10 × django-helpdesk (reloj de pared)",
            ratio(sqlite.get("wall_messages_per_s"), peer.get("wall_messages_per_s")),
            10.0,
            True,
        ),
        ("≥ 20 cargos firmados/s", cargo.get("documents_per_s"), 20.0, True),
        (
            "PostgreSQL 2 procesos ≥ 1,6 × uno",
            ratio(pg2.get("messages_per_s"), pg1.get("messages_per_s")),
            1.6,
            True,
        ),
        ("p95 llegada → respuesta < 2 s (carga ligera)", latency.get("p95"), 2.0, False),
        (
            "RSS máximo plano (grande / pequeño ≤ 1,2)",
            ratio(drains[-1][1], drains[0][1]) if len(drains) > 1 else None,
            1.2,
            False,
        ),
    ]
    lines = ["objetivo                                        medido   cumple"]
    for label, value, bound, at_least in rows:
        if value is None:
            verdict = "no medido"
        else:
            verdict = "sí" if (value >= bound if at_least else value <= bound) else "no"
        lines.append(f"{label:<46} {value if value is not None else '-':>7}   {verdict}")
    return "\n".join(lines)


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'escenario':<18} {'msgs':>6} {'msg/s':>7} {'wall/s':>7} {'docs/s':>7} "
        f"{'límite':>7} {'ratio':>6} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'RSS MiB':>9} {'CPU ms':>7}"
    )
    lines = [head]
    for name, r in results.items():
        lat = r.get("latency_s", {})
        limit = r.get("raw_limit", {}).get("messages_per_s")
        rss = r.get("peak_rss_mib")
        rss_text = "+".join(str(x) for x in rss) if isinstance(rss, list) else str(rss)
        lines.append(
            f"{name:<18} {r.get('messages', 0):>6} {r.get('messages_per_s') or '-':>7} "
            f"{r.get('wall_messages_per_s') or '-':>7} {r.get('documents_per_s') or '-':>7} "
            f"{limit or '-':>7} {r.get('engine_over_limit') or '-':>6} "
            f"{lat.get('p50') or '-':>7} {lat.get('p95') or '-':>7} {lat.get('p99') or '-':>7} "
            f"{rss_text:>9} {r.get('cpu_ms_per_message') or '-':>7}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="messages per sin_pdf/mixto burst")
    parser.add_argument("--cargo", type=int, default=300, help="messages per cargo burst")
    parser.add_argument("--rate", type=float, default=10.0, help="light-load messages/s")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--drain", type=int, default=0, help="also drain N messages (memory)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (median shown)")
    args = parser.parse_args()
    wanted = {s for s in args.only.split(",") if s}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as keys, dovecot() as server, smtp_sink() as sink:
        kit = new_kit(Path(keys))
        corpora = {
            name: [raw for _, raw in build(kit, args.cargo if name == "cargo" else args.n, mix)]
            for name, mix in CORPORA.items()
        }
        for db_kind, workers, corpus in SCENARIOS:
            name = f"{db_kind}{workers if db_kind == 'pg' else ''}-{corpus}"
            if wanted and name not in wanted:
                continue
            print(f"… {name}", file=sys.stderr, flush=True)
            results[name] = median_run(
                [
                    burst(server, sink, kit, corpora[corpus], db_kind, workers)
                    for _ in range(max(1, args.repeat))
                ],
                "documents_per_s" if corpus == "cargo" else "messages_per_s",
            )
        if not wanted or "helpdesk-sin_pdf" in wanted:
            print("… helpdesk-sin_pdf (django-helpdesk 2.6.1)", file=sys.stderr, flush=True)
            results["helpdesk-sin_pdf"] = median_run(
                [peer_burst(server, sink, corpora["sin_pdf"]) for _ in range(max(1, args.repeat))],
                "messages_per_s",
            )
        if not wanted or "latencia" in wanted:
            count = int(args.rate * args.latency_seconds)
            feed = [raw for kind, raw in build(kit, count, {"sin_pdf": 0.8, "cargo": 0.2})]
            print("… latencia", file=sys.stderr, flush=True)
            results["latencia"] = light_load(server, sink, kit, feed, args.rate)
        if args.drain:
            from bench.drain import drain_scaling

            results.update(drain_scaling(server, sink, kit, args.drain))
    print(table(results))
    ours, peer = results.get("sqlite-sin_pdf"), results.get("helpdesk-sin_pdf")
    if ours and peer and peer["wall_messages_per_s"]:
        ratio = ours["wall_messages_per_s"] / peer["wall_messages_per_s"]
        print(f"mailflow / django-helpdesk (same mailbox, wall clock): {ratio:.1f}x")
    print(targets(results))
    out = ROOT / "bench" / "results" / "run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "args": vars(args),
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n", "utf-8")
    print(f"→ {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
