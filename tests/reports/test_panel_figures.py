"""Period figures: which cases each figure counts, the per-case CSV and the paged PDF."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from types import SimpleNamespace

from pypdf import PdfReader

from mailflow.clock.calendarios import default_calendar
from mailflow.config import load_settings
from mailflow.reports import panel_figures as pf
from mailflow.reports.panel_pdf import panel_pdf
from mailflow.store.models import Case
from tests.support.web_seed import ROOT

TODAY = dt.date(2026, 3, 20)


def _figure(
    n: int, due: dt.date | None, delivered: dt.date | None, resolved: bool
) -> pf.CaseFigure:
    case = Case(
        number=f"EXP-2026-{n:06d}", tramite="renuncia", state="x", machine="general",
        legal_receipt_day=dt.date(2026, 3, 2), due_date=due,
    )  # fmt: skip
    overdue = not resolved and due is not None and due < TODAY
    return pf.CaseFigure(case, "lima", "ana", delivered, resolved, overdue)


def test_each_case_counts_where_it_belongs_and_resolved_is_never_pending() -> None:
    due = dt.date(2026, 3, 10)
    figures = [
        _figure(1, due, dt.date(2026, 3, 9), True),  # answered in time
        _figure(2, due, dt.date(2026, 3, 12), True),  # answered late
        _figure(3, due, None, False),  # open, overdue
        _figure(4, dt.date(2026, 3, 30), None, False),  # open, on time
        _figure(5, due, None, True),  # resolved, product not delivered yet: not pending
    ]
    totals = pf.totals(figures)
    assert totals == Counter(
        {"recibidos": 5, "en_plazo": 1, "fuera_de_plazo": 1, "pendientes": 2, "vencidos": 1}
    )
    for metric, count in totals.items():
        assert len(pf.select_figures(figures, metric, {})) == count
    assert [f.case.number for f in pf.select_figures(figures, "pendientes", {})] == [
        "EXP-2026-000003",
        "EXP-2026-000004",
    ]


def test_delivered_on_is_the_reply_sent_on_or_after_resolution() -> None:
    cal = default_calendar(load_settings(ROOT / "config.yaml", env={}))
    closed = dt.datetime(2026, 3, 9, 15, tzinfo=dt.UTC)
    early = closed - dt.timedelta(days=3)  # the acknowledgment, not the product
    late = closed + dt.timedelta(days=1)
    assert pf.delivered_on(Case(closed_at=closed), [early, late], cal) == dt.date(2026, 3, 10)
    assert pf.delivered_on(Case(closed_at=closed), [early], cal) is None
    assert pf.delivered_on(Case(closed_at=None, sla={}), [late], cal) is None
    resolved = Case(closed_at=None, sla={"stopped_on": "2026-03-09"})  # resuelto: clock stopped
    assert pf.delivered_on(resolved, [early, late], cal) == dt.date(2026, 3, 10)


def test_period_defaults_to_this_month_and_swaps_reversed_dates() -> None:
    assert pf.Period.parse(None, None, TODAY) == pf.Period(dt.date(2026, 3, 1), TODAY)
    assert pf.Period.parse("2026-03-15", "2026-03-01", TODAY) == pf.Period(
        dt.date(2026, 3, 1), dt.date(2026, 3, 15)
    )


def test_panel_pdf_has_the_institution_header_and_page_x_of_n_on_every_page() -> None:
    institution = SimpleNamespace(name="Comisión Especial para los Refugiados", ministry="MRE")
    many = {f"t{i:03d}": Counter({"recibidos": i}) for i in range(120)}  # several pages
    pdf = panel_pdf(
        institution,
        pf.Period(dt.date(2026, 3, 1), TODAY),
        Counter({"recibidos": 3}),
        {"tramite": many, "oficina": {}, "responsable": {}},
        lambda group, value: value,
        2,
        "20/03/2026 10:00",
    )
    reader = PdfReader(io.BytesIO(pdf))
    pages = len(reader.pages)
    assert pages >= 2
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert "Comisión Especial para los Refugiados" in text
        assert f"Página {number} de {pages}" in text


def test_dashboard_rows_treat_a_resolved_case_as_closed() -> None:
    from mailflow.reports.metrics import to_row

    cal = default_calendar(load_settings(ROOT / "config.yaml", env={}))
    case = Case(
        id=1, number="EXP-2026-000001", tramite="renuncia", state="resuelto", closed_at=None,
        received_at=dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC), legal_receipt_day=dt.date(2026, 3, 2),
        due_date=dt.date(2026, 3, 23), sla={"stopped_on": "2026-03-12"},
    )  # fmt: skip
    row = to_row(case, cal)
    assert not row.open and row.closed_on == dt.date(2026, 3, 12)
