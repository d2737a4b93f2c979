"""Closed vocabularies (mailflow.vocabulary, mailflow.mail.defects): StrEnum members are their strings,
every value has its Spanish label, and the code writes no audit kind outside the vocabulary."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mailflow.cases.machines import DISPOSITIONS as MACHINE_DISPOSITIONS
from mailflow.intake.decision import DISPOSITIONS, Decision, SignatureSummary
from mailflow.mail.defects import DESCRIPTIONS, SOFT, DefectCode, defect
from mailflow.store.models import INBOX_STATUSES
from mailflow.vocabulary import (
    STATE_DISPOSITIONS,
    AuditKind,
    Disposition,
    InboxStatus,
    SignatureStatus,
)
from mailflow.web.labels import EVENTS, SIGNATURE

ROOT = Path(__file__).resolve().parent.parent / "mailflow"


@pytest.mark.parametrize("enum", [InboxStatus, Disposition, SignatureStatus, AuditKind, DefectCode])
def test_members_are_their_strings(enum: type) -> None:
    for member in enum:
        assert member == member.value and str(member) == member.value
        assert hash(member) == hash(member.value)
        assert f"{member}" == member.value
        assert json.dumps(member) == json.dumps(member.value)


def test_every_value_has_its_spanish_label() -> None:
    assert set(AuditKind) <= set(EVENTS) | {
        AuditKind.DELIVERY,
        AuditKind.DELIVERED,
        AuditKind.DELIVERY_ACCEPTED,
        AuditKind.POLICY,
        AuditKind.PRIORIDAD,
        AuditKind.REVOCATION,
        AuditKind.VULNERABILIDAD_VISTA,
    }  # the timeline heads these with the kind humanized
    assert set(EVENTS) <= set(AuditKind)
    assert set(SignatureStatus) <= set(SIGNATURE)
    assert set(DESCRIPTIONS) == set(DefectCode) and set(DefectCode) >= SOFT


def test_inbox_statuses_are_the_check_constraint() -> None:
    assert tuple(InboxStatus) == INBOX_STATUSES and all(type(s) is str for s in INBOX_STATUSES)


def test_dispositions_of_decisions_and_states() -> None:
    assert tuple(Disposition) == DISPOSITIONS
    assert set(MACHINE_DISPOSITIONS) == set(STATE_DISPOSITIONS) == set(Disposition) - {"ignore"}


def test_plain_strings_become_members_and_unknown_values_are_refused() -> None:
    decision = Decision("review", None, ("x",))
    assert decision.disposition is Disposition.REVIEW
    assert SignatureSummary("valid").status is SignatureStatus.VALID
    assert decision.as_json()["signature"] == {"status": "absent"}
    with pytest.raises(ValueError):
        Decision("maybe", None, ())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SignatureSummary("perhaps")


def test_defect_renders_its_spanish_text() -> None:
    found = defect(DefectCode.TEXT_TRUNCATED, limit=10)
    assert str(found) == "texto recortado a 10 caracteres" and found.code in DefectCode
    assert (
        f"Problema en el mensaje: {found}"
        == "Problema en el mensaje: texto recortado a 10 caracteres"
    )
    assert defect(DefectCode.NOT_UTF8).soft and not found.soft


def test_every_audit_kind_written_in_the_code_is_in_the_vocabulary() -> None:
    """record(session, "<kind>", …) and audit(run, "<kind>", …) anywhere in mailflow/, including
    modules that still pass plain strings."""
    found: dict[str, str] = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            func = node.func
            name = getattr(func, "id", None) or getattr(func, "attr", "")
            kind = node.args[1]
            if name in ("record", "audit") and isinstance(kind, ast.Constant):
                found[str(kind.value)] = f"{path.name}:{node.lineno}"
    unknown = {k: where for k, where in found.items() if k not in set(AuditKind)}
    assert not unknown, unknown
