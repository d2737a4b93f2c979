"""Lay out a document's wording as an A4 PDF (reportlab): header, body, tables, signature, QR."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from mailflow.documents.pdfmarkup import text_paragraph
from mailflow.documents.qr import display_code, draw_qr
from mailflow.documents.templates import DocumentText

PAGE_W, PAGE_H = A4
MARGIN_X = 2.3 * cm
TOP = 3.1 * cm
BOTTOM = 3.4 * cm
RED = colors.HexColor("#C8102E")
INK = colors.HexColor("#1F2933")
GREY = colors.HexColor("#5F6B76")
RULE = colors.HexColor("#B8C0C8")
SHADE = colors.HexColor("#EEF1F4")

_BASE = ParagraphStyle("base", fontName="Helvetica", fontSize=10.5, leading=14.5, textColor=INK)
STYLES = {
    "header": ParagraphStyle(
        "header",
        _BASE,
        fontName="Helvetica-Oblique",
        fontSize=8.5,
        leading=11,
        alignment=TA_CENTER,
        textColor=GREY,
    ),
    "title": ParagraphStyle(
        "title",
        _BASE,
        fontName="Helvetica-Bold",
        fontSize=14,
        leading=18,
        alignment=TA_CENTER,
        spaceBefore=6,
    ),
    "subtitle": ParagraphStyle(
        "subtitle", _BASE, fontName="Helvetica-Bold", fontSize=11.5, leading=15, alignment=TA_CENTER
    ),
    "number": ParagraphStyle("number", _BASE, fontSize=10.5, alignment=TA_CENTER, textColor=GREY),
    "date": ParagraphStyle("date", _BASE, alignment=TA_RIGHT),
    "body": ParagraphStyle("body", _BASE, alignment=TA_JUSTIFY, spaceAfter=8),
    "left": ParagraphStyle("left", _BASE, alignment=TA_LEFT),
    "label": ParagraphStyle("label", _BASE, fontName="Helvetica-Bold", fontSize=9.5, leading=12.5),
    "cell": ParagraphStyle("cell", _BASE, fontSize=9.5, leading=12.5),
    "mono": ParagraphStyle("mono", _BASE, fontName="Courier", fontSize=6.8, leading=9),
    "sign": ParagraphStyle("sign", _BASE, fontSize=9.5, leading=12.5, alignment=TA_CENTER),
}


@dataclass(frozen=True)
class SignatureBox:
    """Where the visible signature goes: 0-based page and (x1, y1, x2, y2) in points."""

    page: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class RenderedPdf:
    """A rendered document: the PDF bytes (unsigned), where its visible signature goes, and
    its number of pages."""

    pdf: bytes
    signature: SignatureBox
    pages: int


class _SignatureSpace(Flowable):
    """An empty frame that remembers where it landed, for pyhanko's visible signature field."""

    def __init__(self, width: float, height: float, align: str) -> None:
        super().__init__()
        self.width, self.height, self.hAlign = width, height, align.upper()
        self.landed: SignatureBox | None = None

    def draw(self) -> None:
        x, y = self.canv.absolutePosition(0, 0)
        box = (round(x), round(y), round(x + self.width), round(y + self.height))
        self.landed = SignatureBox(self.canv.getPageNumber() - 1, box)


def _p(text: str, style: str) -> Paragraph:
    return text_paragraph(text, STYLES[style])


def _grid(data: list[list[Any]], widths: list[float], *, header: bool) -> Table:
    table = Table(data, colWidths=widths, hAlign="LEFT", repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.5, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]
    style.append(("BACKGROUND", (0, 0), (-1 if header else 0, 0 if header else -1), SHADE))
    table.setStyle(TableStyle(style))
    return table


def _story(text: DocumentText, frame_w: float, sig: _SignatureSpace) -> list[Flowable]:
    story: list[Flowable] = [_p(line, "header") for line in text.header_lines]
    story += [Spacer(1, 8), _p(text.title, "title")]
    if text.subtitle:
        story.append(_p(text.subtitle, "subtitle"))
    if text.number_line:
        story.append(_p(text.number_line, "number"))
    story += [Spacer(1, 12), _p(text.date_line, "date"), Spacer(1, 10)]
    if text.addressee:
        story += [_p("\n".join(text.addressee), "left"), Spacer(1, 10)]
    if text.reference:
        rows = [[_p(label, "label"), _p(value, "left")] for label, value in text.reference]
        ref = Table(rows, colWidths=[2.6 * cm, frame_w - 2.6 * cm], hAlign="LEFT")
        ref.setStyle(
            TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
        )
        story += [ref, Spacer(1, 10)]
    story += [_p(paragraph, "body") for paragraph in text.paragraphs]
    if text.fields:
        rows = [[_p(label, "label"), _p(value, "cell")] for label, value in text.fields]
        story += [_grid(rows, [5.2 * cm, frame_w - 5.2 * cm], header=False), Spacer(1, 10)]
    if text.table_headers:
        story += _documents_table(text, frame_w)
    story += [_p(paragraph, "body") for paragraph in text.closing]
    lines = [_p(line, "sign") for line in text.signature.lines]
    block = Table(
        [[sig], *[[line] for line in lines]],
        colWidths=[text.signature.width + 12],
        hAlign=text.signature.align.upper(),
    )
    block.setStyle(
        TableStyle(
            [
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("TOPPADDING", (0, 1), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 1), (-1, -1), 0),
            ]
        )
    )
    story.append(KeepTogether([Spacer(1, 14), block]))
    return story


def _documents_table(text: DocumentText, frame_w: float) -> list[Flowable]:
    out: list[Flowable] = []
    if text.table_title:
        out += [_p(text.table_title, "label"), Spacer(1, 4)]
    if not text.table_rows:
        return [*out, _p(text.table_empty, "body")]
    total = sum(text.table_widths)
    widths = [frame_w * w / total for w in text.table_widths]
    head = [_p(h, "label") for h in text.table_headers]
    body = [
        [
            _p(cell, "mono" if mono else "cell")
            for cell, mono in zip(row, text.table_mono, strict=True)
        ]
        for row in text.table_rows
    ]
    return [*out, _grid([head, *body], widths, header=True), Spacer(1, 10)]


def _page(
    canvas: Canvas, institution: Mapping[str, Any], code: str, url: str, page_label: str
) -> None:
    canvas.saveState()
    _brand(canvas, institution, PAGE_H - 1.6 * cm)
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.6)
    canvas.line(MARGIN_X, BOTTOM - 0.55 * cm, PAGE_W - MARGIN_X, BOTTOM - 0.55 * cm)
    qr_size = 2.3 * cm
    qr_y = 0.75 * cm
    draw_qr(canvas, url, MARGIN_X - 0.15 * cm, qr_y, qr_size)
    x = MARGIN_X + qr_size + 0.2 * cm
    top = qr_y + qr_size - 0.55 * cm
    canvas.setFillColor(INK)
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(x, top, f"Código de verificación: {display_code(code)}")
    canvas.setFont("Helvetica", 8)
    canvas.setFillColor(GREY)
    canvas.drawString(x, top - 11, "Verifique la autenticidad de este documento en:")
    canvas.setFillColor(INK)
    canvas.drawString(x, top - 21, url)
    canvas.setFillColor(GREY)
    canvas.drawString(
        x,
        top - 33,
        "Documento firmado digitalmente conforme a la Ley N° 27269, "
        "Ley de Firmas y Certificados Digitales.",
    )
    canvas.drawRightString(PAGE_W - MARGIN_X, qr_y, page_label)
    canvas.restoreState()


def _brand(canvas: Canvas, institution: Mapping[str, Any], y: float) -> None:
    """The state's header: red PERÚ block, ministry block, institution block."""
    h = 1.0 * cm
    parts = [
        ("PERÚ", RED, colors.white, "Helvetica-Bold", 11),
        (str(institution.get("ministry", "")), INK, colors.white, "Helvetica", 8.5),
        (str(institution.get("name", "")), SHADE, INK, "Helvetica", 8.5),
    ]
    x = MARGIN_X
    for label, fill, ink, font, size in parts:
        width = max(stringWidth(label, font, size) + 0.6 * cm, 1.6 * cm)
        canvas.setFillColor(fill)
        canvas.rect(x, y, width, h, stroke=0, fill=1)
        canvas.setFillColor(ink)
        canvas.setFont(font, size)
        canvas.drawCentredString(x + width / 2, y + h / 2 - size * 0.35, label)
        x += width + 2
    canvas.setStrokeColor(RED)
    canvas.setLineWidth(1.2)
    canvas.line(MARGIN_X, y - 0.25 * cm, PAGE_W - MARGIN_X, y - 0.25 * cm)


def render_pdf(
    text: DocumentText, *, institution: Mapping[str, Any], code: str, url: str, title: str
) -> RenderedPdf:
    """Draw the document; returns the PDF and where its visible signature field belongs."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN_X,
        rightMargin=MARGIN_X,
        topMargin=TOP,
        bottomMargin=BOTTOM,
        title=title,
        author=str(institution.get("name", "")),
        subject=text.title,
        creator="mailflow",
        invariant=True,
    )
    # doc.width includes the frame's 6 pt paddings on each side.
    sig = _SignatureSpace(text.signature.width, text.signature.height, "center")

    def on_page(canvas: Canvas, _doc: Any) -> None:
        _page(canvas, institution, code, url, f"Página {canvas.getPageNumber()}")

    doc.build(_story(text, doc.width - 12, sig), onFirstPage=on_page, onLaterPages=on_page)
    if sig.landed is None:  # pragma: no cover - the story always draws it
        raise RuntimeError("el bloque de firma no se dibujó")
    return RenderedPdf(out.getvalue(), sig.landed, doc.page)
