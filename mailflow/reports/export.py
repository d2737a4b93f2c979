"""Managers' SLA reports: CSV export, PDF with charts and tables, and the weekly email."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailflow.cases.machines import MachineDefinition
from mailflow.documents.pdfmarkup import text_paragraph
from mailflow.intake.catalogue import Catalogue
from mailflow.mail.outgoing import sender_address
from mailflow.reports import metrics
from mailflow.reports.metrics import Compliance, Pending, Summary
from mailflow.reports.panel_pdf import TOP, numbered_canvas
from mailflow.reports.pdf_charts import (
    GREY,
    INK,
    LATE,
    LINE,
    backlog_chart,
    compliance_chart,
    volume_chart,
)
from mailflow.store.models import OutboxMessage, User

if TYPE_CHECKING:
    from mailflow.app import App

CSV_HEADER = (
    "tramite",
    "procedimiento",
    "mes",
    "en_plazo",
    "fuera_de_plazo",
    "total",
    "cumplimiento_pct",
)


@dataclass(frozen=True)
class Labels:
    """Human names of procedures and states (ids when a name is unknown)."""

    tramites: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, catalogue: Catalogue, machines: dict[str, MachineDefinition]) -> Labels:
        """Labels from the catalogue (procedure names by id) and the machines (state labels by
        name).
        """
        states = {s.name: s.label for m in machines.values() for s in m.states}
        return cls({t.id: t.name for t in catalogue}, states)

    def tramite(self, tramite_id: str) -> str:
        """The procedure's name, or its id when unknown."""
        return self.tramites.get(tramite_id, tramite_id)

    def state(self, state: str) -> str:
        """The state's label, or the code with underscores as spaces, capitalized."""
        return self.states.get(state, state.replace("_", " ").capitalize())


def percent(rate: float | None) -> str:
    """'76,9 %' (Spanish decimal comma), '—' when there is nothing to measure."""
    return "—" if rate is None else f"{rate:.1f} %".replace(".", ",")


def sla_csv(summary: Summary, labels: Labels) -> str:
    """SLA compliance per procedure and month as CSV (comma-separated, decimal point)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for c in summary.compliance:
        rate = "" if c.rate is None else f"{c.rate:.1f}"
        row = (c.tramite, labels.tramite(c.tramite), c.month, c.on_time, c.late, c.total, rate)
        writer.writerow(row)
    return out.getvalue()


def sla_pdf(summary: Summary, labels: Labels, institution: str, generated_at: str) -> bytes:
    """The PDF report of the period: key figures, charts and tables."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=TOP,  # room for the header drawn on every page
        bottomMargin=18 * mm,
        title="Reporte de cumplimiento de plazos",
        author=institution,
    )
    styles = _styles()
    period = f"Periodo: {_d(summary.since)} al {_d(summary.today)}"
    story: list[object] = [
        text_paragraph(institution, styles["inst"]),
        text_paragraph("Reporte de cumplimiento de plazos", styles["title"]),
        text_paragraph(f"{period} · generado el {generated_at}", styles["meta"]),
        Spacer(1, 5 * mm),
        _kpis(summary),
        Spacer(1, 6 * mm),
        _block(
            "Cumplimiento por mes (expedientes por mes de recepción)",
            styles,
            compliance_chart(summary.compliance_by_month()),
        ),
        _section("Cumplimiento por procedimiento", styles),
        _compliance_table(summary, labels),
        _block(
            "Carga pendiente por estado y antigüedad (días hábiles)",
            styles,
            backlog_chart(summary.backlog, labels.state),
        ),
        _block("Ingresos por día (últimos 30 días)", styles, volume_chart(summary.volume)),
    ]
    story += [
        _section("Expedientes vencidos", styles),
        _pending_table(summary.overdue, labels, "vencido", styles),
    ]
    story += [
        _section("Expedientes por vencer", styles),
        _pending_table(summary.due_soon, labels, "restantes", styles),
    ]
    doc.build(
        story,
        canvasmaker=numbered_canvas(institution, "Reporte de cumplimiento de plazos", generated_at),
    )
    return buffer.getvalue()


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()["Normal"]
    return {
        "inst": ParagraphStyle("inst", base, fontSize=9, textColor=LATE, fontName="Helvetica-Bold"),
        "title": ParagraphStyle(
            "title",
            base,
            fontSize=18,
            leading=22,
            textColor=INK,
            fontName="Helvetica-Bold",
            spaceBefore=2,
        ),
        "meta": ParagraphStyle("meta", base, fontSize=9, textColor=GREY),
        "h2": ParagraphStyle(
            "h2",
            base,
            fontSize=11,
            leading=14,
            textColor=INK,
            fontName="Helvetica-Bold",
            spaceBefore=8,
            spaceAfter=4,
            alignment=TA_LEFT,
        ),
        "cell": ParagraphStyle("cell", base, fontSize=8, leading=10, textColor=INK),
        "empty": ParagraphStyle("empty", base, fontSize=9, textColor=GREY),
    }


def _block(title: str, styles: dict[str, ParagraphStyle], flowable: object) -> KeepTogether:
    return KeepTogether([_section(title, styles), flowable])


def _section(title: str, styles: dict[str, ParagraphStyle]) -> Paragraph:
    return text_paragraph(title, styles["h2"])


def _kpis(summary: Summary) -> Table:
    figures = [
        (percent(summary.overall_rate()), "cumplimiento"),
        (str(summary.totals.get("recibidos", 0)), "recibidos"),
        (str(summary.totals.get("cerrados", 0)), "cerrados"),
        (str(summary.totals.get("abiertos", 0)), "pendientes"),
        (str(len(summary.overdue)), "vencidos"),
        (str(len(summary.due_soon)), "por vencer"),
    ]
    table = Table([[f for f, _ in figures], [n for _, n in figures]], colWidths=[29 * mm] * 6)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 15),
                ("FONT", (0, 1), (-1, 1), "Helvetica", 8),
                ("TEXTCOLOR", (0, 0), (-1, 0), INK),
                ("TEXTCOLOR", (0, 1), (-1, 1), GREY),
                ("TEXTCOLOR", (4, 0), (4, 0), LATE if summary.overdue else INK),
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("BOX", (0, 0), (-1, -1), 0.5, LINE),
                ("LINEAFTER", (0, 0), (-2, -1), 0.5, LINE),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f7f9fb")),
                ("TOPPADDING", (0, 0), (-1, 0), 7),
                ("BOTTOMPADDING", (0, 1), (-1, 1), 7),
            ]
        )
    )
    return table


def _grid(rows: list[list[object]], widths: list[float], numeric_from: int) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("TEXTCOLOR", (0, 0), (-1, -1), INK),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f4")),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
                ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _compliance_table(summary: Summary, labels: Labels) -> Table:
    rows: list[list[object]] = [
        ["Procedimiento", "En plazo", "Fuera de plazo", "Cumplimiento", "Mediana (d.h.)"]
    ]
    tramites = {c.tramite: c for c in summary.compliance_by_tramite()}
    for tramite in sorted(set(tramites) | set(summary.median_days), key=labels.tramite):
        c = tramites.get(tramite, Compliance(tramite, "*", 0, 0))
        median = summary.median_days.get(tramite)
        rows.append(
            [
                labels.tramite(tramite),
                c.on_time,
                c.late,
                percent(c.rate),
                "—" if median is None else f"{median:g}".replace(".", ","),
            ]
        )
    if len(rows) == 1:
        rows.append(["Sin datos en el periodo", "", "", "", ""])
    return _grid(rows, [70 * mm, 22 * mm, 26 * mm, 26 * mm, 28 * mm], 1)


def _pending_table(
    items: Sequence[Pending], labels: Labels, kind: str, styles: dict[str, ParagraphStyle]
) -> object:
    if not items:
        return text_paragraph("Ninguno.", styles["empty"])
    days_header = "Retraso (d.h.)" if kind == "vencido" else "Restan (d.h.)"
    rows: list[list[object]] = [
        ["Expediente", "Procedimiento", "Solicitante", "Vence", days_header]
    ]
    for p in items:
        rows.append(
            [
                p.number,
                text_paragraph(labels.tramite(p.tramite), styles["cell"]),
                text_paragraph(p.applicant, styles["cell"]),
                _d(p.due_date),
                p.days,
            ]
        )
    return KeepTogether(_grid(rows, [34 * mm, 50 * mm, 44 * mm, 22 * mm, 24 * mm], 3))


def _d(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


# -- the weekly report by email --------------------------------------------------------------


def week_key(day: dt.date) -> str:
    """'weekly:2026-W12': the ISO week of `day` (dedupe key prefix of the weekly email)."""
    year, week, _ = day.isocalendar()
    return f"weekly:{year}-W{week:02d}"


def manager_addresses(session: Session, extra: Sequence[str] = ()) -> list[str]:
    """Addresses of active managers (User.email when the model has it) plus `extra`."""
    found = [a.strip().lower() for a in extra if a and "@" in a]
    users = session.scalars(select(User).where(User.role == "manager", User.active.is_(True)))
    for user in users:
        email = getattr(user, "email", None)
        if isinstance(email, str) and "@" in email:
            found.append(email.strip().lower())
    return list(dict.fromkeys(found))


def weekly_report_job(app: App, now: dt.datetime, recipients: Sequence[str] = ()) -> list[int]:
    """Queue this week's report (PDF attached) to every manager, once per ISO week and address.

    Safe to run any number of times and from several processes: a message already queued for
    the week (dedupe key `weekly:<año>-W<semana>:<correo>`) is not queued again. Returns the ids
    of the outbox rows created now.
    """
    settings, cal = app.settings, app.calendario
    local = cal.local(now)
    today = local.date()
    key = week_key(today)
    labels = Labels.build(app.catalogue, app.machines)
    created: list[int] = []
    with app.database.session() as session:
        summary = metrics.compute(session, cal, today, settings.sla.due_soon_days)
        pdf = sla_pdf(summary, labels, settings.institution.name, local.strftime("%d/%m/%Y %H:%M"))
        sender = sender_address(settings.mailboxes, None, settings.institution.domain)
        for to in manager_addresses(session, recipients):
            dedupe = f"{key}:{to}"
            if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe)):
                continue
            mime = _weekly_mime(summary, key, sender, to, pdf, now, settings.institution.domain)
            row = OutboxMessage(
                kind="weekly_report",
                dedupe_key=dedupe,
                message_id=str(mime["Message-ID"]).strip("<>"),
                from_addr=sender,
                to_addr=to,
                subject=str(mime["Subject"]),
                raw=mime.as_bytes(),
                created_at=now,
                next_attempt_at=now,
            )
            session.add(row)
            session.flush()
            created.append(row.id)
    return created


def weekly_text(summary: Summary) -> str:
    """The body of the weekly email: the key figures in a few Spanish lines."""
    week = [n for d, n in summary.volume if d > summary.today - dt.timedelta(days=7)]
    lines = [
        "Estimado(a) gestor(a):",
        "",
        f"Adjuntamos el reporte de cumplimiento de plazos al {summary.today:%d/%m/%Y}.",
        "",
        f"- Cumplimiento de plazos del periodo: {percent(summary.overall_rate())}",
        f"- Solicitudes recibidas en los últimos 7 días: {sum(week)}",
        f"- Expedientes pendientes: {summary.totals.get('abiertos', 0)}",
        f"- Expedientes vencidos: {len(summary.overdue)}",
        f"- Expedientes por vencer: {len(summary.due_soon)}",
        "",
        "Este mensaje se genera automáticamente cada semana.",
    ]
    return "\n".join(lines) + "\n"


def _weekly_mime(
    summary: Summary, key: str, sender: str, to: str, pdf: bytes, now: dt.datetime, domain: str
) -> EmailMessage:
    week = key.removeprefix("weekly:")
    msg = EmailMessage()
    msg["Subject"] = f"Reporte semanal de plazos — semana {week}"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=f"semanal.{week}", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(weekly_text(summary))
    msg.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"reporte-plazos-{week}.pdf"
    )
    return msg
