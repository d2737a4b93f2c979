"""Time the sender's recording of accepted batches in process: `runners.sender._record_batch` only.

Usage: .venv/bin/python bench/record_bench.py [-n 1000] [--batch 200] [--runs 3]
                                              [--fail-every K] [--mix sin_pdf] [--profile N]
Builds the bench corpus (`--mix`: sin_pdf by default, or "mix" for bench.corpus.MIX), runs it
through the real pipeline on a fresh SQLite database (as bench/pipeline_harness.py does, not
timed) and keeps that database as a template. Each run copies the template, claims every
outbox row (status "sending", as the sender does) and times `_record_batch` over all of them,
`--batch` rows per call, with synthetic outcomes: a 250 for each row, or with `--fail-every K`
every K-th row a temporary failure and the row after it a permanent one (smtp.max_attempts
is then 1, so a permanent failure gives up at once: the bounce reactions run).
Prints per run: ms/row (wall, CPU), statements/row, flushes/row, the outcome counts, and a
digest of every table the recording writes (outbox rows, delivery attempts, case events,
timers, cases' SLA JSON, ids included): two versions of the sender that behave the same print
the same digest. Then the median of the runs' ms/row. `--profile N` prints the top N
functions (cumulative) of the last run.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import hashlib
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.corpus import MIX  # noqa: E402
from bench.pipeline_harness import stored_corpus  # noqa: E402
from mailflow.config import Settings  # noqa: E402
from mailflow.pipeline.route import process_inbox_message, read_inbox_message  # noqa: E402
from mailflow.runners import sender  # noqa: E402
from mailflow.store.db import Database  # noqa: E402
from mailflow.store.models import InboxMessage, OutboxMessage  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
SENT_AT = NOW + dt.timedelta(minutes=5)
DIGEST_TABLES = {
    "outbox_messages": "id, status, attempts, next_attempt_at, last_error, sent_at",
    "delivery_attempts": "id, outbox_id, at, ok, error, smtp_response",
    "case_events": "id, case_id, inbox_message_id, at, actor, kind, event, from_state, "
    "to_state, reason, data",
    "timers": "id, case_id, kind, due_at, fired_at, fired_by, cancelled_at",
    "cases": "id, state, sla, flags, due_date",
}


def build_template(tmp: Path, n: int, mix: str) -> tuple[Settings, Path]:
    """Process `n` corpus messages through the pipeline into a new SQLite database; returns
    the settings and the database file (the outbox holds the replies the pipeline wrote)."""
    path = tmp / "template.db"
    app, rows = stored_corpus(tmp, path, n, {"sin_pdf": 1.0} if mix == "sin_pdf" else MIX, NOW)
    settings = app.settings
    for i in range(0, len(rows), 50):
        with app.database.session() as s:
            for row in rows[i : i + 50]:
                reading = read_inbox_message(app, row, NOW)
                with s.begin_nested():
                    loaded = s.get(InboxMessage, row.id)
                    assert loaded is not None
                    process_inbox_message(app, s, loaded, NOW, reading)
    app.database.dispose()
    return settings, path


def _outcomes(ids: list[int], fail_every: int) -> list[Any]:
    """A 250 for each row; with `fail_every` K > 0, row i (counting from 1) with i % K == 0
    fails temporarily and i % K == 1 (i > 1) fails permanently instead."""
    out = []
    for i, row_id in enumerate(ids, start=1):
        if fail_every and i % fail_every == 0:
            out.append(sender._Outcome(row_id, None, "SMTPServerDisconnected: cortada", False))
        elif fail_every and i > 1 and i % fail_every == 1:
            out.append(sender._Outcome(row_id, None, "SMTPRecipientsRefused: 550 no", True))
        else:
            out.append(sender._Outcome(row_id, f"250 2.0.0 Ok: queued as Q{row_id}"))
    return out


def digest(db: Database) -> str:
    """A hash of every row (listed columns) of the tables the recording writes."""
    h = hashlib.sha256()
    with db.engine.connect() as conn:
        for table, columns in DIGEST_TABLES.items():
            for row in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY id")):
                h.update(json.dumps(list(row), default=str, sort_keys=True).encode())
    return h.hexdigest()[:16]


def one_run(
    settings: Settings, template: Path, tmp: Path, args: argparse.Namespace, last: bool
) -> float:
    """Copy the template, claim every outbox row, time the recording; returns ms/row."""
    path = tmp / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, path)
    db = Database(f"sqlite:///{path}")
    lease = dt.timedelta(minutes=5)
    ids = sender.claim_due(db, NOW + dt.timedelta(days=1), 10**9, lease)
    with db.session(readonly=True) as s:
        kinds: dict[str, int] = {}
        for kind in s.scalars(select(OutboxMessage.kind)):
            kinds[kind] = kinds.get(kind, 0) + 1
    outcomes = _outcomes(ids, args.fail_every)
    if args.fail_every:
        smtp = settings.smtp.model_copy(update={"max_attempts": 1})
        settings = settings.model_copy(update={"smtp": smtp})
    statements, flushes = [0], [0]

    def count(*_a: Any) -> None:
        statements[0] += 1

    def count_flush(*_a: Any) -> None:
        flushes[0] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    event.listen(Session, "before_flush", count_flush)
    stats = sender.SendStats()
    prof = cProfile.Profile() if args.profile and last else None
    started, cpu = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for i in range(0, len(outcomes), args.batch):
        sender._record_batch(settings, db, lambda: SENT_AT, outcomes[i : i + args.batch], stats)
    if prof:
        prof.disable()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    event.remove(Session, "before_flush", count_flush)
    n = len(outcomes)
    ms = 1000 * took / n
    print(
        f"{n} rows {kinds}, batch {args.batch}: {ms:.3f} ms/row wall, "
        f"{1000 * cpu / n:.3f} ms/row CPU, {statements[0] / n:.2f} statements/row, "
        f"{flushes[0] / n:.2f} flushes/row; sent {stats.sent} retried {stats.retried} "
        f"failed {stats.failed}; digest {digest(db)}"
    )
    db.dispose()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--mix", choices=("sin_pdf", "mix"), default="sin_pdf")
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailflow-record-") as name:
        tmp = Path(name)
        settings, template = build_template(tmp, args.n, args.mix)
        gc.collect()
        gc.freeze()  # the corpus and the pipeline's heap are the harness's, not the sender's
        times = [
            one_run(settings, template, tmp, args, i == args.runs - 1) for i in range(args.runs)
        ]
        print(f"median of {args.runs}: {statistics.median(times):.3f} ms/row")


if __name__ == "__main__":
    main()
