"""The whole fixture corpus through the pipeline in one mailbox: every message from a person
gets exactly one first answer; automatic mail gets none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailflow.app import App
from mailflow.mail.parse import parse_message
from mailflow.ops.keys import keys_demo
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, InboxMessage, OutboxMessage
from tests.corpus.cases import CASES
from tests.corpus.compose import make_kit
from tests.corpus.specials import SPECIAL_CASES
from tests.support.cases_support import MONDAY, make_app, store

ROOT = Path(__file__).resolve().parents[2]
MAIL = ROOT / "tests" / "fixtures" / "mail"


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    kit = make_kit(tmp_path / "pki")
    base = make_app(tmp_path, sqlite_db)
    signatures = base.settings.signatures.model_copy(update={"trust_roots": (kit.ca_pem,)})
    # the corpus reuses a few personas for hundreds of messages on one day: lift the daily cap
    # (loop protection, exercised in test_pipeline and test_answers) so it does not hide answers
    replies = base.settings.replies.model_copy(update={"daily_cap_per_address": 1000})
    built = make_app(tmp_path, sqlite_db, signatures=signatures, replies=replies)
    built.__dict__["corpus"] = [
        *(p.read_bytes() for p in sorted(MAIL.glob("*.eml"))),
        *(p.read_bytes() for p in sorted((ROOT / "samples").glob("*.eml"))),
        *(case.make(kit) for case in [*CASES, *SPECIAL_CASES]),
    ]
    keys_demo(built.settings)
    return built


def test_every_person_in_the_corpus_gets_exactly_one_first_answer(app: App) -> None:
    unanswered, twice, machine_answered = [], [], []
    people = 0
    for raw in app.__dict__["corpus"]:
        with app.database.session() as s:
            before = s.scalar(select(func.count(OutboxMessage.id))) or 0
            row = store(s, raw, MONDAY)
            process_inbox_message(app, s, row, MONDAY)
            after = s.scalar(select(func.count(OutboxMessage.id))) or 0
            disposition = row.disposition
        sender = parse_message(raw).sender
        label = (
            f"{sender or '(sin remitente)'}: {parse_message(raw).subject[:60]!r} → {disposition}"
        )
        if disposition == "ignore":
            if after != before:
                machine_answered.append(label)
            continue
        if not sender:  # nobody to answer: staff see it in the queue
            continue
        people += 1
        if after == before:
            with app.database.session(readonly=True) as s:
                why = s.scalars(
                    select(CaseEvent.reason).where(CaseEvent.inbox_message_id == row.id)
                ).all()
            unanswered.append(f"{label} ({' | '.join(w[:80] for w in why)})")
        elif after - before > 1:
            twice.append(label)
    assert (unanswered, twice, machine_answered) == ([], [], [])
    assert people >= 150
    with app.database.session(readonly=True) as s:
        ignored = s.scalar(
            select(func.count(InboxMessage.id)).where(InboxMessage.disposition == "ignore")
        )
    assert ignored is not None and ignored >= 14
