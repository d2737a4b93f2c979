"""Reading a message before any write: a per-message CPU budget, and no write lock while parsing."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.ops.checking import check_bytes
from mailflow.pipeline import route as pipeline
from mailflow.runners.budget import Budget
from mailflow.runners.engine import process_claimed
from mailflow.runners.inbox import claim_batch, store_raw
from mailflow.runners.reading import DecideAs
from mailflow.runners.sandbox import Sandbox
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, InboxMessage, OutboxMessage
from tests.support.mail_requests import request

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]
GENEROUS_SECONDS = 30.0  # a busy shared machine; the budget itself is 1 s of CPU


@pytest.fixture
def app(sqlite_db: Database) -> App:
    settings = load_settings(REPO / "config.yaml", env={})
    limits = settings.limits.model_copy(update={"decide_cpu_seconds": 1.0})
    app = App(settings.model_copy(update={"limits": limits}))
    app.__dict__["database"] = sqlite_db
    return app


def _spin(*_args: Any, **_kw: Any) -> Any:
    while True:
        pass


def test_check_sends_a_message_over_budget_to_staff(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.intake, "decide", _spin)
    started = time.monotonic()
    decision = check_bytes(app, request(1))
    assert time.monotonic() - started < GENEROUS_SECONDS
    assert decision.disposition == "review"
    assert "tiempo de proceso permitido (1 s de CPU)" in decision.reasons[0]


def _store(app: App, raw: bytes) -> int:
    with app.database.session() as s:
        row = store_raw(s, raw, mailbox="m", source="smtp", now=NOW)
        assert row is not None
        s.flush()
        return row.id


def test_service_sends_a_message_over_budget_to_staff_with_the_reason(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.intake, "decide", _spin)
    row_id = _process(app, request(2), "w1")
    with app.database.session(readonly=True) as s:
        row = s.get(InboxMessage, row_id)
        assert row is not None and row.disposition == "review" and row.case_id is None
        events = s.scalars(select(CaseEvent).where(CaseEvent.inbox_message_id == row_id)).all()
        assert any("excedió el tiempo de proceso" in e.reason for e in events)
        replies = s.scalars(
            select(OutboxMessage).where(OutboxMessage.inbox_message_id == row_id)
        ).all()
    # its sender, read from the header block alone, is told at once that staff will review it
    assert [(r.to_addr, r.kind) for r in replies] == [("persona2@example.org", "acuse_registro")]
    registro = next(e.data["registro"] for e in events if e.kind == "exception")
    assert registro and registro in replies[0].raw.decode("ascii", "replace")


def _process(app: App, raw: bytes, worker: str) -> int:
    """Store `raw`, claim it alone for `worker` and process it (it must end "done"); its id."""
    row_id = _store(app, raw)
    assert claim_batch(app.database, worker, 1, NOW) == [row_id]
    assert process_claimed(app, row_id, worker, NOW) == "done"
    return row_id


def _over_budget(app: App, raws: list[bytes], worker: str) -> list[OutboxMessage]:
    """Store and process `raws` with every full reading over budget; the replies queued."""
    for raw in raws:
        _process(app, raw, worker)
    with app.database.session(readonly=True) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_message_over_budget_from_a_machine_or_seen_before_is_not_answered(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.intake, "decide", _spin)
    automatic = request(3).replace(b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1)
    two_mailboxes = request(4, sender="a@example.org, b@example.org")
    person = request(5)
    again = b"Received: from relay.example.org by mx; Mon, 23 Nov 2026 10:01:00 +0000\n" + person
    replies = _over_budget(app, [automatic, two_mailboxes, person, again], "w2")
    # the person once (the copy delivered again is the same message: same Message-ID and
    # sender), the machine and the ambiguous From: never
    assert [r.to_addr for r in replies] == ["persona5@example.org"]


def test_parsing_and_deciding_happen_with_no_write_lock_held(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(app.database.url.database)
    writable: list[bool] = []
    real = pipeline.read_message

    def probing(app_: App, raw: bytes, decide: DecideAs | None = None) -> pipeline.Reading:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if anyone holds the write lock
            other.execute("ROLLBACK")
            writable.append(True)
        except sqlite3.OperationalError:
            writable.append(False)
        finally:
            other.close()
        return real(app_, raw, decide)

    monkeypatch.setattr(pipeline, "read_message", probing)
    row_id = _process(app, request(3), "w1")
    assert writable == [True]
    with app.database.session(readonly=True) as s:
        row = s.get(InboxMessage, row_id)
        assert row is not None and row.disposition in ("accept", "observe", "inform")


def _task(kind: str) -> object:
    if kind == "spin":
        _spin()
    if kind == "hungry":
        return bytearray(4 << 30)
    return os.getpid()


def test_a_sandbox_child_serves_many_tasks_and_is_replaced_after_an_overrun() -> None:
    box = Sandbox(_task, Budget(1, memory_bytes=256 << 20))
    try:
        first, second = box.run("pid"), box.run("pid")
        assert first.value == second.value != os.getpid()  # one child, reused
        started = time.monotonic()
        over = box.run("spin")
        assert over.value is None and "tiempo de proceso" in (over.exceeded or "")
        assert time.monotonic() - started < GENEROUS_SECONDS
        hungry = box.run("hungry")
        assert hungry.value is None and "memoria" in (hungry.exceeded or "")
        again = box.run("pid")
        assert again.value not in (None, first.value)  # a fresh child after each failure
    finally:
        box.close()


def test_a_message_over_budget_naming_someone_elses_case_is_acknowledged_with_no_case_data(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailflow.runners import reading
    from mailflow.store.models import Case

    real = reading.findings_of

    def findings(app_: App, msg: Any) -> Any:  # the other person's message: over budget
        return _spin() if msg.sender == "otra@example.org" else real(app_, msg)

    monkeypatch.setattr(reading, "findings_of", findings)
    _process(app, request(1), "w3")
    with app.database.session(readonly=True) as s:
        number = s.scalars(select(Case.number)).one()
        before = len(s.scalars(select(OutboxMessage)).all())
    other = request(6, sender="Otra Persona <otra@example.org>").replace(
        b"Subject: ", f"Subject: Consulta {number} ".encode(), 1
    )
    replies = _over_budget(app, [other], "w3")[before:]
    with app.database.session(readonly=True) as s:
        reasons = list(s.scalars(select(CaseEvent.reason)))
    assert any("excedió el tiempo de proceso" in r for r in reasons)
    assert any("no es el correo del solicitante" in r for r in reasons)  # holds the window
    assert [r.to_addr for r in replies] == ["otra@example.org"]
    text = email.message_from_bytes(replies[0].raw, policy=email.policy.default)
    body = text.get_body(("plain",))
    assert body is not None
    # the answer a message read in full naming a case not the sender's gets (third_party)
    assert "no está registrado a nombre de esta dirección" in body.get_content()


def test_a_message_over_budget_answering_the_senders_own_case_joins_that_case(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailflow.runners import reading
    from mailflow.store.models import Case, CaseMessage

    real = reading.findings_of

    def findings(app_: App, msg: Any) -> Any:  # the applicant's second message: over budget
        return _spin() if msg.message_id == "again1@example.org" else real(app_, msg)

    monkeypatch.setattr(reading, "findings_of", findings)
    _process(app, request(1), "w4")
    with app.database.session(readonly=True) as s:
        case_id, number = s.execute(select(Case.id, Case.number)).one()
    again = (
        request(1)
        .replace(b"<req1@example.org>", b"<again1@example.org>")
        .replace(b"Subject: ", f"Subject: {number} ".encode(), 1)
    )
    second = _process(app, again, "w4")
    with app.database.session(readonly=True) as s:
        row = s.get(InboxMessage, second)
        case = s.get(Case, case_id)
        thread = s.scalars(
            select(CaseMessage.inbox_message_id).where(CaseMessage.case_id == case_id)
        ).all()
        reasons = s.scalars(select(CaseEvent.reason).where(CaseEvent.inbox_message_id == second))
        assert any("excedió el tiempo de proceso" in r for r in reasons)
    # staff find it on the applicant's case, flagged, as a message read in full over budget
    assert row is not None and row.disposition == "review" and row.case_id == case_id
    assert second in thread
    assert case is not None and "mensaje_nuevo" in (case.flags or [])


def test_a_message_over_budget_is_not_taken_for_an_absence_notice_by_its_subject_alone(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an absence-notice subject is automatic only when the body carries no request, and
    # nobody could read this body: its sender is answered; a delivery failure's subject
    # is automatic whatever the body says
    monkeypatch.setattr(app.intake, "decide", _spin)

    def titled(i: int, subject: str) -> bytes:
        raw = request(i)
        head, _, rest = raw.partition(b"\nSubject: ")
        return head + b"\nSubject: " + subject.encode() + b"\n" + rest.split(b"\n", 1)[1]

    absent = titled(11, "Vacaciones: solicito autorización de viaje")
    failed = titled(12, "Undeliverable: Actualización de datos")
    replies = _over_budget(app, [absent, failed], "w4")
    assert [r.to_addr for r in replies] == ["persona11@example.org"]


def test_an_applicants_reply_whose_decision_runs_out_of_budget_is_acknowledged(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailflow.pipeline import route
    from mailflow.store.models import Case

    real = app.intake.decide

    def decide(probe: Any, **kw: Any) -> Any:  # the reply, read as its procedure: over budget
        if probe.message_id == "re2@example.org" and not probe.subject.startswith("Re:"):
            return _spin()
        return real(probe, **kw)

    monkeypatch.setattr(app.intake, "decide", decide)
    # the case is found only after the full read (so the decision as its procedure is
    # made in the write step, under the budget)
    monkeypatch.setattr(route, "thread_keys", lambda _raw: ((), ""))
    _process(app, request(2), "w5")
    with app.database.session(readonly=True) as s:
        case_id, number, state = s.execute(select(Case.id, Case.number, Case.state)).one()
    assert state == "observado"
    reply = (
        request(2)
        .replace(b"<req2@example.org>", b"<re2@example.org>")
        .replace(b"Subject: ", f"Subject: Re: {number} ".encode(), 1)
    )
    second = _process(app, reply, "w5")
    with app.database.session(readonly=True) as s:
        case = s.get_one(Case, case_id)
        events = s.scalars(select(CaseEvent).where(CaseEvent.inbox_message_id == second)).all()
        replies = s.scalars(
            select(OutboxMessage).where(OutboxMessage.inbox_message_id == second)
        ).all()
    assert any("excedió el tiempo de proceso" in e.reason for e in events)
    assert "mensaje_nuevo" in (case.flags or [])
    # the applicant is told at once that staff will review it
    assert [(r.to_addr, r.kind) for r in replies] == [("persona2@example.org", "acuse_registro")]
