"""A filtered case list as CSV (UTF-8 with BOM, for spreadsheets): one row per case."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select

from mailflow.app import App
from mailflow.store.db import Database
from mailflow.store.models import Case
from mailflow.web.labels import Labels, dmy
from mailflow.web.plazo import plazo

HEADER = (
    "Expediente", "Trámite", "Solicitante", "Documento", "Correo", "Estado", "Buzón",
    "Recibido", "Vence", "Días hábiles restantes", "Plazo", "Atendido", "Alertas",
)  # fmt: skip


def case_list_csv(
    db: Database,
    app: App,
    stmt: Select[Any],
    today: dt.date,
    sla_name: Callable[[Case], str],
) -> bytes:
    """Every case `stmt` selects (no paging), as CSV bytes with dates dd/mm/aaaa.

    `sla_name` gives the list's Plazo column (En plazo, Por vencer …) of one case.
    """
    labels = Labels.of(app)
    modes = {s.name: s.sla for m in app.machines.values() for s in m.states}
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(HEADER)
    with db.session(readonly=True) as session:
        for case in session.scalars(stmt, execution_options={"yield_per": 500}):
            term = plazo(app.calendario_de(case.office), case, today, modes.get(case.state))
            answered: Any = ""
            if term.in_time is not None:
                answered = "En plazo" if term.in_time else "Fuera de plazo"
            writer.writerow(
                (
                    case.number, labels.tramite(case.tramite), case.applicant_name or "",
                    case.applicant_document or "", case.applicant_email or "",
                    labels.state(case.state), labels.mailbox(case.mailbox),
                    dmy(app.calendario.local(case.received_at)), dmy(case.due_date),
                    "" if term.left is None else term.left, sla_name(case), answered,
                    "; ".join(labels.flag(f) for f in case.flags or []),
                )
            )  # fmt: skip
    return out.getvalue().encode("utf-8")
