"""The desk's «Reprocesar» runs a message already processed through the pipeline again
(pipeline.route.reprocess), without touching its status to get past the pipeline's guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.app import App
from mailflow.pipeline.route import process_inbox_message
from mailflow.store.db import Database
from mailflow.store.models import CaseEvent, InboxMessage
from mailflow.web.engine import process
from tests.support.cases_support import MONDAY, mail, make_app
from tests.support.cases_support import process as _process


@pytest.fixture
def app(tmp_path: Path, sqlite_db: Database) -> App:
    return make_app(tmp_path, sqlite_db)


def _events(app: App, row_id: int) -> list[tuple[str, str]]:
    with app.database.session(readonly=True) as s:
        return [
            (e.kind, e.reason)
            for e in s.scalars(
                select(CaseEvent).where(CaseEvent.inbox_message_id == row_id).order_by(CaseEvent.id)
            )
        ]


def test_reprocessing_a_done_message_runs_the_pipeline_again(app: App) -> None:
    row = _process(app, mail("Consulta", "Hola, quisiera saber algo sobre mi trámite."))
    assert (row.status, row.disposition) == ("done", "review")
    before = _events(app, row.id)
    with app.database.session() as s:
        again = s.get(InboxMessage, row.id)
        assert again is not None
        process_inbox_message(app, s, again, MONDAY)  # the pipeline's guard: done stays done
    assert _events(app, row.id) == before
    with app.database.session() as s:
        again = s.get(InboxMessage, row.id)
        assert again is not None
        process(s, app, again, actor="ana", now=MONDAY)
        assert again.status == "done"  # never set back to "processing" to pass a check
    after = _events(app, row.id)
    assert after[: len(before)] == before and len(after) > len(before)
    assert after[-1] == ("personal", "Reprocesado por el personal.")
    new = after[len(before) : -1]
    assert ("exception", before[-1][1]) in new  # decided again: back to staff, same reason
    assert all(kind != "reply" for kind, _ in new)  # the acknowledgment is not sent twice
    with app.database.session(readonly=True) as s:
        done = s.get(InboxMessage, row.id)
        assert done is not None and (done.status, done.disposition) == ("done", "review")
