"""The period panel as a PDF: the institution's header on every page and "Página x de N"."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from mailflow.reports.panel_figures import GROUPS, METRICS, Period

TOP = 28 * mm


def numbered_canvas(name: str, subtitle: str, generated: str) -> type[Canvas]:
    """A reportlab canvas class drawing, on every page, the institution's header (`name`,
    `subtitle`) and the footer "Generado el …" / "Página x de N" (N known once all pages are
    laid out). Pages need a top margin of at least TOP."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, height = A4
            self.setFont("Helvetica-Bold", 10)
            self.drawString(18 * mm, height - 14 * mm, name)
            self.setFont("Helvetica", 8)
            self.drawString(18 * mm, height - 18.5 * mm, subtitle)
            self.drawRightString(width - 18 * mm, height - 14 * mm, "Mesa de partes virtual")
            self.setStrokeColor(colors.HexColor("#c8102e"))
            self.line(18 * mm, height - 21 * mm, width - 18 * mm, height - 21 * mm)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(18 * mm, 10 * mm, f"Generado el {generated}")
            self.drawRightString(width - 18 * mm, 10 * mm, f"Página {self._pageNumber} de {total}")

    return NumberedCanvas


def panel_pdf(
    institution: Any,
    period: Period,
    totals: Counter[str],
    tables: dict[str, dict[str, Counter[str]]],
    label: Callable[[str, str], str],
    backlog: int,
    generated: str,
) -> bytes:
    """The PDF bytes: period figures, then one table per grouping (procedure, office, officer)."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=TOP,
        bottomMargin=18 * mm, title="Panel del periodo", author=institution.name,
    )  # fmt: skip
    styles = getSampleStyleSheet()
    start, end = period.start.strftime("%d/%m/%Y"), period.end.strftime("%d/%m/%Y")
    story: list[Any] = [
        Paragraph("Panel del periodo", styles["Title"]),
        Paragraph(f"Día legal de recepción del {start} al {end}", styles["Normal"]),
        Spacer(1, 5 * mm),
    ]
    rows = [["Cifra", "Expedientes"]] + [[name, str(totals[m])] for m, name in METRICS.items()]
    rows.append(["Bandeja de excepciones (ahora)", str(backlog)])
    story += [_table(rows), Spacer(1, 6 * mm)]
    for by, title in GROUPS.items():
        story.append(Paragraph(escape(f"Por {title}"), styles["Heading2"]))
        head = [title.capitalize(), *METRICS.values()]
        body = [
            [Paragraph(escape(label(by, value)), styles["Normal"])]
            + [str(counts[m]) for m in METRICS]
            for value, counts in tables[by].items()
        ]
        story += [_table([head, *body] if body else [head]), Spacer(1, 4 * mm)]
    maker = numbered_canvas(institution.name, institution.ministry, generated)
    doc.build(story, canvasmaker=maker)
    return buffer.getvalue()


def _table(rows: list[list[Any]]) -> Table:
    header = [
        Paragraph(f"<b>{escape(str(c))}</b>", getSampleStyleSheet()["Normal"]) for c in rows[0]
    ]
    table = Table([header, *rows[1:]], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#cccccc")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f1f1")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table
