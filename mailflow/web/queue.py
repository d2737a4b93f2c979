"""The exception queue's rows at volume: light columns only, filtered, grouped, sorted, paged."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mailflow.store.models import Case, CaseEvent, InboxMessage
from mailflow.store.search import all_terms
from mailflow.web.labels import reason_group

REVIEW_STATE = "en_revision"
PAGE_SIZE = 25
CHUNK = 900  # ids per IN (…) list: below SQLite's 999 bound parameters of old builds
AGES = {"1": 1, "3": 3, "7": 7, "15": 15}
"""Age filter `edad`: items waiting at least this many calendar days."""
SORTS = ("prioridad", "antiguos", "recientes", "vence")
"""`orden`: the default "prioridad" is highest priority first (issue 16), then oldest."""
KINDS = ("mensaje", "expediente")

HELD_BACK = "reply_suppressed"  # an answer the daily cap held back: staff must look
HELD = select(CaseEvent.inbox_message_id).where(
    CaseEvent.kind == HELD_BACK, CaseEvent.inbox_message_id.is_not(None)
)
QUEUED = or_(
    InboxMessage.status == "set_aside",
    and_(
        InboxMessage.status == "done",
        InboxMessage.disposition == "review",
        InboxMessage.case_id.is_(None),
    ),
    and_(
        InboxMessage.status == "done",
        InboxMessage.disposition != "ignore",
        InboxMessage.id.in_(HELD),
    ),
)
"""Inbox messages waiting for staff: set aside by an error, 'review' without a case, or
whose answer the daily cap held back."""

FLAG_GROUPS = {
    "extemporaneo": "Recurso extemporáneo",
    "subsanacion_fuera_de_plazo": "Subsanación fuera de plazo",
    "firma_no_valida": "Firma por verificar",
    "identidad_no_coincide": "Identidad por verificar",
    "subsanacion_ampliada": "Subsanación ampliada por el calendario",
}


@dataclass(frozen=True)
class Row:
    """One queue item without its message body: what filtering, grouping and sorting need."""

    kind: str  # "mensaje" | "expediente"
    id: int
    arrived: dt.datetime
    mailbox: str | None
    tramite: str | None
    reason: str
    group: str
    due: dt.date | None = None
    number: str = ""
    name: str = ""
    email: str = ""
    flags: tuple[str, ...] = ()
    sender: str = ""
    subject: str = ""
    assignee_id: int | None = None  # cases only (rules/assignment.yaml)
    office: str | None = None
    clock_runs: bool = True  # False: a paused or closed case (no deadline bonus)
    score: int = 0  # priority points (mailflow.cases.priority), set by `with_scores`


@dataclass
class Page:
    """One page of the queue plus the counts the filter bar shows."""

    rows: list[Row]
    total: int  # after every filter
    pending: int  # everything in the queue
    page: int
    pages: int
    groups: list[tuple[str, int]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def load_rows(session: Session, states: Sequence[str] = (REVIEW_STATE,)) -> list[Row]:
    """Every queued message and every case in one of the queue `states` (the machines'
    `queue: true` states), columns only: no raw message is read."""
    # Joins from the few pending rows to their events (index on the event's message / case),
    # no ORDER BY: the latest event wins by id here, so the database never walks all events.
    reasons = _latest(
        session.execute(
            select(CaseEvent.inbox_message_id, CaseEvent.id, CaseEvent.reason)
            .join(InboxMessage, InboxMessage.id == CaseEvent.inbox_message_id)
            .where(QUEUED, CaseEvent.reason != "")
        )
    )
    rows: list[Row] = []
    for mid, arrived, mailbox, tramite, last_error in session.execute(
        select(
            InboxMessage.id,
            InboxMessage.arrived_at,
            InboxMessage.mailbox,
            InboxMessage.tramite,
            InboxMessage.last_error,
        ).where(QUEUED)
    ):
        reason = reasons.get(mid) or last_error or "No se pudo decidir automáticamente."
        group = "Error al procesar" if mid not in reasons and last_error else reason_group(reason)
        rows.append(Row("mensaje", mid, arrived, mailbox, tramite, reason, group))
    cases = session.execute(
        select(
            Case.id,
            Case.received_at,
            Case.mailbox,
            Case.tramite,
            Case.due_date,
            Case.number,
            Case.applicant_name,
            Case.applicant_email,
            Case.flags,
            Case.assignee_id,
            Case.office,
            Case.sla,
            Case.closed_at,
        ).where(Case.state.in_(states))
    ).all()
    case_reasons: dict[int, str] = {}
    policies: dict[int, str] = {}  # why an oficio waits for approval (issuance.case_overrides)
    ids = [c[0] for c in cases]
    for start in range(0, len(ids), CHUNK):  # by the case_id index, never a scan of all events
        chunk = ids[start : start + CHUNK]
        case_reasons.update(
            _latest(
                session.execute(
                    select(CaseEvent.case_id, CaseEvent.id, CaseEvent.reason).where(
                        CaseEvent.case_id.in_(chunk), CaseEvent.to_state.in_(states)
                    )
                )
            )
        )
        policies.update(
            _latest(
                session.execute(
                    select(CaseEvent.case_id, CaseEvent.id, CaseEvent.reason).where(
                        CaseEvent.case_id.in_(chunk), CaseEvent.kind == "policy"
                    )
                )
            )
        )
    for (
        cid, received, box, kind_of, due, number, name, email, flags, assignee, office, sla,
        closed,
    ) in cases:  # fmt: skip
        parts = [r for r in (case_reasons.get(cid), policies.get(cid)) if r]
        reason = " · ".join(parts) or "Requiere revisión del personal."
        flagged = [FLAG_GROUPS[f] for f in flags or () if f in FLAG_GROUPS]
        group = flagged[0] if flagged else reason_group(reason)
        rows.append(
            Row(
                "expediente", cid, received, box, kind_of, reason, group, due,
                number, name or "", email or "", tuple(flags or ()),
                assignee_id=assignee, office=office,
                clock_runs=closed is None and not (sla or {}).get("paused_on"),
            )
        )  # fmt: skip
    return rows


def _latest(rows: Iterable[Any]) -> dict[int, str]:
    """{owner id: reason of its latest event} from (owner id, event id, reason) rows."""
    best: dict[int, tuple[int, str]] = {}
    for owner, event_id, reason in rows:
        if owner is not None and (owner not in best or event_id > best[owner][0]):
            best[owner] = (event_id, reason)
    return {owner: reason for owner, (_, reason) in best.items()}


def select_page(
    rows: Sequence[Row],
    q: Mapping[str, str],
    now: dt.datetime,
    people: Mapping[str, int] | None = None,
) -> Page:
    """Filter (tipo, motivo, tramite, buzon, edad, q, responsable), group by reason, sort
    (orden), page.

    Query parameters (all optional): tipo mensaje|expediente; motivo a group name; tramite a
    procedure id ("-" for none); buzon a mailbox name; edad a key of AGES; q words to find in
    number, name, email or reason; orden one of SORTS (default "prioridad": Row.score, highest
    first, then oldest); pagina from 1. responsable: "sin" (cases nobody is assigned) or a key
    of `people` (e.g. "yo" or a username → user id): only that person's cases (no messages).
    """
    base = [r for r in rows if _keep(r, q, now) and _assigned(r, q.get("responsable", ""), people)]
    kinds = Counter(r.kind for r in base)
    kind = q.get("tipo", "")
    if kind in KINDS:
        base = [r for r in base if r.kind == kind]
    groups = Counter(r.group for r in base)
    motivo = q.get("motivo", "")
    chosen = [r for r in base if r.group == motivo] if motivo else base
    order = q.get("orden", "prioridad")
    if order == "prioridad":
        chosen.sort(key=lambda r: (-r.score, r.arrived, r.id))
    elif order == "recientes":
        chosen.sort(key=lambda r: (r.arrived, r.id), reverse=True)
    elif order == "vence":
        chosen.sort(key=lambda r: (r.due is None, r.due or dt.date.max, r.arrived, r.id))
    else:
        chosen.sort(key=lambda r: (r.arrived, r.id))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    raw_page = q.get("pagina", "1")
    page = min(pages, max(1, int(raw_page))) if raw_page.isdigit() else 1
    start = (page - 1) * PAGE_SIZE
    return Page(
        rows=chosen[start : start + PAGE_SIZE],
        total=len(chosen),
        pending=len(rows),
        page=page,
        pages=pages,
        groups=sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])),
        kinds={k: kinds.get(k, 0) for k in KINDS},
    )


def _assigned(row: Row, responsable: str, people: Mapping[str, int] | None) -> bool:
    """Whether `row` passes the assignee filter (`responsable`; "" keeps every row)."""
    if not responsable:
        return True
    if row.kind != "expediente":
        return False
    if responsable == "sin":
        return row.assignee_id is None
    uid = (people or {}).get(responsable)
    return uid is not None and row.assignee_id == uid


def with_scores(rows: Sequence[Row], scores: Mapping[int, int]) -> list[Row]:
    """Case rows completed with their priority points (`scores`: case id → points)."""
    return [
        replace(r, score=scores[r.id]) if r.kind == "expediente" and r.id in scores else r
        for r in rows
    ]


def _keep(row: Row, q: Mapping[str, str], now: dt.datetime) -> bool:
    tramite = q.get("tramite", "")
    if tramite and (row.tramite or "-") != tramite:
        return False
    if q.get("buzon") and row.mailbox != q["buzon"]:
        return False
    days = AGES.get(q.get("edad", ""))
    if days is not None and now - row.arrived < dt.timedelta(days=days):
        return False
    text = q.get("q", "").strip()
    return not text or all_terms((row.number, row.name, row.email, row.reason), text)


def with_headlines(rows: Sequence[Row], headlines: Mapping[int, tuple[str, str]]) -> list[Row]:
    """Rows of messages completed with (sender, subject) parsed for this page only."""
    return [
        replace(r, sender=headlines[r.id][0], subject=headlines[r.id][1])
        if r.kind == "mensaje" and r.id in headlines
        else r
        for r in rows
    ]


def query_without(q: Mapping[str, str], *keys: str, **values: Any) -> dict[str, str]:
    """The current filters minus `keys`, plus `values` (for links that change one filter)."""
    out = {k: v for k, v in q.items() if k not in keys and v}
    out.update({k: str(v) for k, v in values.items() if v not in (None, "")})
    return out
