"""PDFs with JavaScript or embedded files are flagged for staff, with the reason."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.intake.pdfactive import active_content
from mailflow.ops.checking import check_bytes
from tests.support.cases_support import DATOS, mail
from tests.support.pdfs import make_pdf

REPO = Path(__file__).resolve().parents[2]


def _active(js: bool = False, attachment: bool = False) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(["Motivo: viaje familiar"])))
    if js:
        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert('hola');"),
            }
        )
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    if attachment:
        writer.add_attachment("programa.exe", b"MZ\x90\x00")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_active_content_is_named() -> None:
    assert active_content(make_pdf(["Hola"])) == ()
    assert active_content(_active(js=True)) == ("JavaScript",)
    assert active_content(_active(attachment=True)) == ("archivos incrustados",)
    assert active_content(b"%PDF-1.7 basura /JS (x)") == ("JavaScript",)  # damaged: raw scan
    assert active_content(b"%PDF-1.7 /JSON no es /JS") == ("JavaScript",)
    assert active_content(b"%PDF-1.7 /JSON /Jsx") == ()
    # names written with #xx escapes hide from a byte scan, not from the catalog read
    escaped = _active(js=True).replace(b"/JavaScript", b"/J#61vaScript")
    assert active_content(escaped.replace(b"/JS ", b"/J#53 ")) == ("JavaScript",)


def test_a_request_with_active_content_goes_to_staff_flagged() -> None:
    app = App(load_settings(REPO / "config.yaml", env={}))
    raw = mail(
        "Actualización de datos",
        DATOS,
        attachments=(("datos.pdf", _active(js=True, attachment=True)),),
    )
    decision = check_bytes(app, raw)
    assert decision.disposition == "review" and "contenido_activo" in decision.flags
    assert any(
        "PDF con contenido activo (JavaScript, archivos incrustados): datos.pdf" in r
        for r in decision.reasons
    )
