"""Assignment rules (rules/assignment.yaml): validation at start-up and the choice of officer."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.cases.assignment import (
    AssignmentRules,
    assign_new_case,
    parse_assignment_rules,
    reassign,
)
from mailflow.errors import DefinitionError
from mailflow.store.db import Database
from mailflow.store.models import Case, CaseEvent
from mailflow.web.users import add_user
from tests.support.web_seed import PASSWORD, ROOT, settings_for

TRAMITES = ("actualizacion_datos", "reconsideracion", "apelacion")
OFFICES = ("lima", "tacna")
NOW = dt.datetime(2026, 3, 9, 15, 0, tzinfo=dt.UTC)
GOOD = """\
officers: [ana, beto, carla]
teams:
  recursos: [ana, beto]
rules:
  - name: recursos
    tramite: [reconsideracion, apelacion]
    team: recursos
    strategy: round_robin
  - name: tacna
    office: tacna
    officer: carla
  - name: resto
    team: recursos
    strategy: carga
"""


def parse(text: str) -> AssignmentRules:
    return parse_assignment_rules(text, Path("rules/assignment.yaml"), TRAMITES, OFFICES)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("officers: [ana]\nteams:\n  t: [ana, zoe]\n", 3, "funcionario desconocido 'zoe'"),
        (
            "officers: [ana]\nrules:\n  - officer: ana\n    tramite: visa_humanitaria\n",
            4,
            "procedimiento desconocido 'visa_humanitaria'",
        ),
        (
            "officers: [ana]\nrules:\n  - officer: ana\n    office: cusco\n",
            4,
            "oficina desconocida 'cusco'",
        ),
        (
            "officers: [ana]\nteams: {t: [ana]}\nrules:\n  - team: t\n    strategy: azar\n",
            5,
            "estrategia desconocida 'azar'",
        ),
        ("officers: [ana]\nrules:\n  - officer: pepe\n", 3, "funcionario desconocido 'pepe'"),
        ("officers: [ana]\nrules:\n  - team: nadie\n", 3, "equipo desconocido 'nadie'"),
        ("officers: [ana]\nrules:\n  - tramite: apelacion\n", 3, "officer o team"),
        ("officers: [ana]\nreglas: []\n", 2, "sección desconocida 'reglas'"),
    ],
)
def test_invalid_rules_say_file_line_and_what(text: str, line: int, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse(text)
    assert str(info.value).startswith(f"rules/assignment.yaml:{line}: ")
    assert message in str(info.value)


def test_valid_rules_keep_order_and_say_where() -> None:
    rules = parse(GOOD)
    assert [r.name for r in rules.rules] == ["recursos", "tacna", "resto"]
    assert rules.rules[1].where == "assignment.yaml:9"


def test_start_up_refuses_a_bad_assignment_file(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules_dir)
    (rules_dir / "assignment.yaml").write_text(
        "officers: [ana]\nrules:\n  - officer: ana\n    strategy: sorteo\n", encoding="utf-8"
    )
    settings = settings_for(tmp_path).model_copy(update={"rules_dir": rules_dir})
    with pytest.raises(DefinitionError) as info:
        App(settings).validate()
    assert f"{rules_dir / 'assignment.yaml'}:4: estrategia desconocida 'sorteo'" in str(info.value)


def _case(n: int, tramite: str, office: str | None = None) -> Case:
    return Case(
        number=f"2026-{n:06d}", year=2026, seq=n, tramite=tramite, machine="general",
        state="en_tramite", office=office, received_at=NOW, legal_receipt_day=NOW.date(),
        fields={}, flags=[], sla={},
    )  # fmt: skip


def test_round_robin_load_direct_rule_and_reassignment_are_audited(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    rules = parse(GOOD)
    with db.session() as session:
        for name in ("ana", "beto", "carla"):
            add_user(session, name, name.capitalize() + " Pérez", "staff", PASSWORD)
        picked = []
        for n in range(1, 5):
            case = _case(n, "apelacion")
            session.add(case)
            session.flush()
            user = assign_new_case(session, rules, case, default_office="lima", now=NOW, actor="t")
            picked.append(user.username if user else None)
        assert picked == ["ana", "beto", "ana", "beto"]  # turno rotativo
        tacna = _case(5, "actualizacion_datos", "tacna")
        session.add(tacna)
        session.flush()
        user = assign_new_case(session, rules, tacna, default_office="lima", now=NOW, actor="t")
        assert user is not None and user.username == "carla"
        lima = _case(6, "actualizacion_datos")
        session.add(lima)
        session.flush()
        # carga: ana and beto have two open cases each → the first listed, ana
        user = assign_new_case(session, rules, lima, default_office="lima", now=NOW, actor="t")
        assert user is not None and user.username == "ana"
        moved = reassign(session, lima, "carla", now=NOW, actor="usuario:jefa", reason="vacaciones")
        assert lima.assignee_id == moved.id
        events = session.query(CaseEvent).filter(CaseEvent.case_id == lima.id).all()
        texts = [e.reason for e in events]
        assert any("Asignado a Ana Pérez por la regla «resto»" in t for t in texts)
        assert any("Reasignado de Ana Pérez a Carla Pérez. Motivo: vacaciones" in t for t in texts)
    db.dispose()
