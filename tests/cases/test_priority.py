"""Vulnerability signals of a case: from its mail, its registry record and its birth date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.cases.priority import age_on, decide, detect_signals, parse_vocabulary, signals_of
from mailflow.errors import DefinitionError
from mailflow.store.db import Database
from mailflow.store.models import Applicant, Case
from tests.support.web_seed import NOW, settings_for


def _case(fields: dict[str, object], email: str = "x@example.org") -> Case:
    return Case(
        number="EXP-2026-000001", year=2026, seq=1, tramite="prorroga_residencia",
        machine="oficio", state="en_tramite", received_at=NOW, legal_receipt_day=NOW.date(),
        applicant_email=email, fields=fields, flags=[], sla={},
    )  # fmt: skip


def test_age_counts_full_years() -> None:
    assert age_on(dt.date(2008, 3, 10), dt.date(2026, 3, 9)) == 17
    assert age_on(dt.date(2008, 3, 9), dt.date(2026, 3, 9)) == 18


def test_birth_date_registry_and_words_become_suggestions_then_decisions(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    app = App(settings_for(tmp_path))
    with db.session() as session:
        session.add(
            Applicant(
                full_name="Luis Mora",
                email="luis@example.org",
                data={"vulnerabilidad": "discapacidad"},
            )
        )
        case = _case(
            {"fecha_nacimiento": "1950-01-02", "motivo": "uso silla de ruedas"}, "luis@example.org"
        )
        session.add(case)
        session.flush()
        detect_signals(session, app, case, NOW)
        found = {(s.source, s.category, s.status) for s in signals_of(session, case)}
        assert found == {
            ("correo", "adulto_mayor", "sugerida"),  # 76 years old on the receipt day
            ("correo", "discapacidad", "sugerida"),  # "silla de ruedas"
            ("registro", "discapacidad", "sugerida"),
        }
        assert case.priority == 3
        detect_signals(session, app, case, NOW)  # idempotent: nothing new
        assert len(signals_of(session, case)) == 3
        for s in signals_of(session, case):
            if s.category == "discapacidad":
                decide(
                    session,
                    app.vulnerability,
                    case,
                    s.id,
                    "descartada",
                    actor="usuario:jefa",
                    now=NOW,
                )
        assert case.priority == 2  # only the older-person signal is left
        with pytest.raises(ValueError):
            decide(
                session, app.vulnerability, case, 999, "confirmada", actor="usuario:jefa", now=NOW
            )
    db.dispose()


def test_a_bad_age_range_says_file_and_line() -> None:
    text = "categorias:\n  menor:\n    nombre: Menor\n    edad: {desde: 18, hasta: 3}\n"
    with pytest.raises(DefinitionError, match=r"^v.yaml:4: edad"):
        parse_vocabulary(text, Path("v.yaml"))
