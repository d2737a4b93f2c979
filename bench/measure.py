"""What one benchmark run measured: raw fetch+parse limit, engine phases, latency percentiles."""

from __future__ import annotations

import datetime as dt
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import func, select

from mailflow.mail.parse import parse_message
from mailflow.store.db import Database
from mailflow.store.models import Document, InboxMessage, OutboxMessage
from tests.support.dovecot import DovecotAccount

FETCH_BATCH = 200


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 (nearest rank) in seconds, rounded to the millisecond."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))], 3)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99)}


def raw_limit(account: DovecotAccount, folder: str = "INBOX") -> dict[str, Any]:
    """IMAP fetch (batches of 200, BODY.PEEK so nothing changes) + MIME parse of every message."""
    client = account.client()
    fetch_s = parse_s = 0.0
    count = 0
    try:
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search(["ALL"]))
        for i in range(0, len(uids), FETCH_BATCH):
            t0 = time.perf_counter()
            fetched = client.fetch(uids[i : i + FETCH_BATCH], ["BODY.PEEK[]"])
            t1 = time.perf_counter()
            for data in fetched.values():
                parse_message(bytes(data[b"BODY[]"]))
                count += 1
            parse_s += time.perf_counter() - t1
            fetch_s += t1 - t0
    finally:
        client.logout()
    total = fetch_s + parse_s
    return {
        "messages": count,
        "fetch_s": round(fetch_s, 3),
        "parse_s": round(parse_s, 3),
        "messages_per_s": round(count / total, 1) if total else None,
        "fetch_only_per_s": round(count / fetch_s, 1) if fetch_s else None,
    }


def _utc(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def in_reply_to(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return " ".join(str(headers.get("In-Reply-To", "")).split())


def engine_phases(db: Database, arrivals: list[tuple[float, bytes]]) -> dict[str, Any]:
    """From the database and the sink: counts, phase spans, throughput and arrival→reply latency."""
    with db.session(readonly=True) as s:
        rows = s.execute(
            select(
                InboxMessage.message_id,
                InboxMessage.arrived_at,
                InboxMessage.processed_at,
                InboxMessage.status,
                InboxMessage.disposition,
            ).where(InboxMessage.status != "duplicate")
        ).all()
        documents = int(s.scalar(select(func.count(Document.id))) or 0)
        outbox = int(s.scalar(select(func.count(OutboxMessage.id))) or 0)
        dispositions: dict[str, int] = {}
        for row in rows:
            key = f"{row.status}/{row.disposition}"
            dispositions[key] = dispositions.get(key, 0) + 1
    arrived = {r.message_id: _utc(r.arrived_at) for r in rows}
    processed = [_utc(r.processed_at) for r in rows if r.processed_at is not None]
    replies = {in_reply_to(raw): at for at, raw in arrivals}
    latency = [replies[m] - arrived[m] for m in arrived if m in replies]
    first = min(arrived.values(), default=0.0)
    last_reply = max(replies.values(), default=first)
    end = max([last_reply, *processed]) if processed else last_reply
    span = end - first
    process_span = (max(processed) - min(processed)) if processed else 0.0
    return {
        "messages": len(rows),
        "dispositions": dispositions,
        "documents": documents,
        "replies_queued": outbox,
        "replies_received": len(arrivals),
        "ingest_s": round(max(arrived.values(), default=0.0) - first, 3),
        "process_s": round(process_span, 3),
        "end_to_end_s": round(span, 3),
        "first_processed_s": round(min(processed) - first, 3) if processed else None,
        "last_processed_s": round(max(processed) - first, 3) if processed else None,
        "last_reply_s": round(last_reply - first, 3),
        "messages_per_s": round(len(rows) / span, 1) if span > 0 else None,
        "documents_per_s": round(documents / process_span, 1) if process_span > 0 else None,
        "latency_s": percentiles(latency),
    }
