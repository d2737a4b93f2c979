"""Time the engine's per-message work in process: `pipeline.process_inbox_message` only.

Usage: .venv/bin/python bench/pipeline_harness.py [-n 300] [--batch 50] [--profile N]
Builds the bench corpus (sin_pdf), stores it in a fresh SQLite database, reads every message
first (parse, decision and the Findings, as the sandboxed reader does, not timed), then times
the write part: each message in one transaction (`--batch 1`) or `--batch` messages per
transaction with a savepoint each. Prints ms/message; `--profile N` prints the top N functions (cumulative).
`--engine`: claim every row first (not timed), then write each batch as the engine does
(`runners.inbox_claims.write_batch`: the batch's rows loaded with one query, a savepoint per
message, the claim released with the row's last update).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.corpus import build, new_kit  # noqa: E402
from mailflow.app import App  # noqa: E402
from mailflow.config import load_settings  # noqa: E402
from mailflow.pipeline.route import process_inbox_message, read_inbox_message  # noqa: E402
from mailflow.runners.engine import pipeline_handling  # noqa: E402
from mailflow.runners.inbox import Read, claim, store_raw, write_batch  # noqa: E402
from mailflow.store.models import InboxMessage  # noqa: E402


def stored_corpus(
    tmp: Path, path: Path, n: int, mix: dict[str, float], now: dt.datetime
) -> tuple[App, list[InboxMessage]]:
    """An App on a new, migrated SQLite database at `path` (data and keys under `tmp`) whose
    inbox holds `n` bench-corpus messages of `mix`, stored at `now`; returns it and the rows
    (detached, in id order). Shared by the pipeline and sender harnesses."""
    kit = new_kit(tmp / "keys")
    raws = [raw for _, raw in build(kit, n, mix)]
    settings = load_settings(ROOT / "config.yaml", env={})
    signatures = settings.signatures.model_copy(update={"trust_roots": (kit.ca_pem,)})
    settings = settings.model_copy(
        update={
            "data_dir": tmp / "data",
            "database_url": f"sqlite:///{path}",
            "signatures": signatures,
        }
    )
    app = App(settings)
    app.database.migrate()
    with app.database.session() as s:
        for raw in raws:
            store_raw(s, raw, mailbox="INBOX", source="imap", now=now)
    with app.database.session(readonly=True) as s:
        rows = list(s.scalars(select(InboxMessage).order_by(InboxMessage.id)))
        s.expunge_all()
    return app, rows


def print_plans(app: App, seen: dict[str, Any]) -> None:
    """EXPLAIN QUERY PLAN of every distinct SELECT/UPDATE/DELETE seen (SQLite): a plan that
    scans a whole table, or searches by a low-selectivity index, grows with the database."""
    with app.database.engine.connect() as conn:
        for sql, params in list(seen.items()):
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
                continue
            if isinstance(params, list):
                params = params[0] if params else ()
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
            print(" ".join(sql.split())[:160])
            for line in plan:
                print("    ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--trace", action="store_true", help="print the SQL of each message")
    parser.add_argument(
        "--engine", action="store_true", help="write through the engine's write_batch"
    )
    parser.add_argument(
        "--plans", action="store_true", help="print SQLite's query plan of each distinct statement"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailflow-harness-") as name:
        tmp = Path(name)
        now = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
        app, rows = stored_corpus(tmp, tmp / "h.db", args.n, {"sin_pdf": 1.0}, now)
        readings = {r.id: read_inbox_message(app, r, now) for r in rows}
        ids = [r.id for r in rows]
        if args.engine:
            claimed = claim(app.database, "harness", len(ids), now)
            assert [r.id for r in claimed] == ids
            handling = pipeline_handling(app)
        prof = cProfile.Profile() if args.profile else None
        statements = [0]
        flushes = [0]
        event.listen(
            app.database.engine,
            "before_cursor_execute",
            lambda *a: statements.__setitem__(0, statements[0] + 1),
        )
        event.listen(Session, "before_flush", lambda *a: flushes.__setitem__(0, flushes[0] + 1))
        if args.trace:
            event.listen(
                app.database.engine,
                "before_cursor_execute",
                lambda c, cur, sql, *a: print("   SQL", " ".join(sql.split())[:150]),
            )
        seen: dict[str, Any] = {}
        if args.plans:
            event.listen(
                app.database.engine,
                "before_cursor_execute",
                lambda c, cur, sql, params, *a: seen.setdefault(sql, params),
            )
        started = time.perf_counter()
        cpu = time.process_time()
        if prof:
            prof.enable()
        for i in range(0, len(ids), args.batch):
            chunk = ids[i : i + args.batch]
            if args.engine:
                reads = [(row_id, Read(readings[row_id])) for row_id in chunk]
                statuses = write_batch(app.database, reads, "harness", now, handling)
                assert set(statuses) == {"done"}, statuses
                continue
            with app.database.session() as s:
                for row_id in chunk:
                    if args.trace:
                        print("-- message", row_id)
                    if args.batch == 1:
                        row = s.get(InboxMessage, row_id)
                        assert row is not None
                        process_inbox_message(app, s, row, now, readings[row_id])
                        continue
                    with s.begin_nested():
                        row = s.get(InboxMessage, row_id)
                        assert row is not None
                        process_inbox_message(app, s, row, now, readings[row_id])
        if prof:
            prof.disable()
        took = time.perf_counter() - started
        cpu = time.process_time() - cpu
        n = len(ids)
        print(
            f"{n} messages, batch {args.batch}: wall {took:.2f} s ({1000 * took / n:.2f} ms/msg), "
            f"CPU {cpu:.2f} s ({1000 * cpu / n:.2f} ms/msg), {statements[0] / n:.1f} statements/msg, "
            f"{flushes[0] / n:.1f} flushes/msg"
        )
        if args.plans:
            print_plans(app, seen)
        if prof:
            prof.dump_stats("/tmp/casecost_harness.prof")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
        app.database.dispose()


if __name__ == "__main__":
    main()
