"""Reading text and form fields from PDFs, including broken and hostile ones, within bounds."""

from __future__ import annotations

import time

import pytest

import mailflow.intake.pdftext as pdftext
from mailflow.intake.pdftext import PdfContent, read_pdf
from tests.support.fixtures_pki import SignedPdfFactory
from tests.support.pdfs import (
    encrypted_pdf,
    flate_bomb_pdf,
    looping_pdf,
    make_pdf,
    nested_arrays_pdf,
    raw_pdf,
    xobject_bomb_pdf,
)
from tests.support.waiting import BUSY_MACHINE_SECONDS


def test_reads_text_lines_in_order() -> None:
    content = read_pdf(make_pdf(["Nombre completo: Juan Pérez Quispe", "Celular: 987 654 321"]))
    assert content.error is None
    assert content.pages == 1
    assert content.encrypted is False
    assert content.text == "Nombre completo: Juan Pérez Quispe\nCelular: 987 654 321"


def test_reads_form_fields_including_checkboxes() -> None:
    pdf = make_pdf(
        ["Formulario"],
        {"nombres_apellidos": "María López", "telefono": "+51 987654321", "vacio": ""},
        checkboxes={"es_refugiado": True, "menor_de_edad": False},
    )
    content = read_pdf(pdf)
    assert content.error is None
    assert content.form_fields == {
        "nombres_apellidos": "María López",
        "telefono": "+51 987654321",
        "es_refugiado": "Yes",
        "menor_de_edad": "Off",
    }


def test_signed_pdf_text_is_read_and_signature_field_is_not_a_form_value(
    signed_pdf_factory: SignedPdfFactory,
) -> None:
    content = read_pdf(signed_pdf_factory(["Recurso de Apelación"], form_fields={"motivo": "X"}))
    assert content.text == "Recurso de Apelación"
    assert content.form_fields == {"motivo": "X"}


def test_strips_nuls_and_normalises_spaces_keeping_line_breaks() -> None:
    page = (
        b"BT /F1 12 Tf 60 800 Td (Nombre:\\000   Juan\\t\\tPerez) Tj 0 -20 Td (Celular: 999) Tj ET"
    )
    content = read_pdf(raw_pdf(page, field_value=b"(  Juan\\000  Perez )"))
    assert content.text == "Nombre: Juan Perez\nCelular: 999"
    assert content.form_fields == {"campo": "Juan Perez"}


@pytest.mark.parametrize(
    "data", [b"", b"Hola, adjunto mi DNI", b"\x89PNG\r\n\x1a\n" + b"\0" * 2000]
)
def test_not_a_pdf(data: bytes) -> None:
    assert read_pdf(data) == PdfContent(error="el archivo no es un PDF")


def test_pdf_marker_after_the_first_kilobyte_is_not_a_pdf() -> None:
    assert read_pdf(b" " * 1024 + make_pdf(["x"])).error == "el archivo no es un PDF"


def test_truncated_pdf_is_damaged() -> None:
    pdf = make_pdf(["Texto que se pierde"])
    content = read_pdf(pdf[: len(pdf) // 2])
    assert content.error is not None and content.error.startswith("PDF dañado: ")


def test_password_protected_pdf() -> None:
    content = read_pdf(encrypted_pdf(["Confidencial"], password="secreto"))
    assert (content.encrypted, content.error, content.text) == (
        True,
        "PDF cifrado con contraseña",
        "",
    )


def test_encrypted_pdf_with_empty_user_password_is_read() -> None:
    content = read_pdf(encrypted_pdf(["Solo permisos"], password=""))
    assert (content.encrypted, content.error, content.text) == (True, None, "Solo permisos")


def test_max_pages_limits_the_text_read() -> None:
    content = read_pdf(xobject_bomb_pdf(depth=1, fan_out=1, pages=5), max_pages=2)
    assert content.pages == 5
    assert content.text.split() == ["nivel", "nivel"]


def test_looping_page_tree_is_reported_not_followed() -> None:
    for isolate in (False, True):
        content = read_pdf(looping_pdf(), isolate=isolate)
        assert content.error is not None and content.error.startswith("PDF dañado")


def test_deeply_nested_objects_are_reported() -> None:
    started = time.monotonic()
    content = read_pdf(nested_arrays_pdf(depth=100_000))
    assert content.error is not None and content.error.startswith("PDF dañado")
    assert time.monotonic() - started < BUSY_MACHINE_SECONDS


@pytest.mark.parametrize("isolate", [False, True])
def test_flate_bomb_stops_at_the_inflate_limit(isolate: bool) -> None:
    bomb = flate_bomb_pdf(megabytes=64)  # 64 KiB on disk, 64 MiB inflated
    assert len(bomb) < 100_000
    started = time.monotonic()
    content = read_pdf(bomb, isolate=isolate)
    assert time.monotonic() - started < BUSY_MACHINE_SECONDS
    assert content.error is not None
    assert content.error.startswith("PDF sospechoso: excede los límites de lectura")


def test_exponential_form_xobjects_are_cut_short() -> None:
    started = time.monotonic()
    content = read_pdf(xobject_bomb_pdf(depth=12, fan_out=10))  # 10**12 draws if followed
    assert time.monotonic() - started < BUSY_MACHINE_SECONDS
    assert 0 < content.text.count("nivel") <= 1000


@pytest.mark.parametrize("isolate", [False, True])
def test_deadline_stops_a_slow_read_and_keeps_partial_text(isolate: bool) -> None:
    slow = xobject_bomb_pdf(depth=12, fan_out=10, pages=20)  # ~70 ms a page
    started = time.monotonic()
    content = read_pdf(slow, seconds=0.2, isolate=isolate)
    assert time.monotonic() - started < BUSY_MACHINE_SECONDS  # the error below proves the cut
    assert content.error == "lectura del PDF excedió el tiempo límite (0.2 s)"
    assert content.pages == 20
    assert "nivel" in content.text


def _hang(data: bytes, max_pages: int, seconds: float) -> PdfContent:
    time.sleep(30)
    return PdfContent()


def _hog_memory(data: bytes, max_pages: int, seconds: float) -> PdfContent:
    hog = [bytearray(64 << 20) for _ in range(16)]  # 1 GiB: over the child's 512 MiB headroom
    return PdfContent(text=str(len(hog)))


def test_isolated_read_is_killed_when_it_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdftext, "_read_guarded", _hang)
    started = time.monotonic()
    content = read_pdf(make_pdf(["x"]), seconds=0.1, isolate=True)
    assert time.monotonic() - started < BUSY_MACHINE_SECONDS  # the child sleeps 30 s
    assert content.error == "lectura del PDF excedió el tiempo límite (0.1 s)"


def test_isolated_read_is_bounded_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdftext, "_read_guarded", _hog_memory)
    content = read_pdf(make_pdf(["x"]), isolate=True)
    assert content.text == ""
    assert content.error is not None and "memoria" in content.error


def test_large_files_are_read_in_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = pdftext._read_in_child

    def spy(data: bytes, max_pages: int, seconds: float) -> PdfContent:
        calls.append(len(data))
        return real(data, max_pages, seconds)

    monkeypatch.setattr(pdftext, "_read_in_child", spy)
    monkeypatch.setattr(pdftext, "ISOLATE_ABOVE", 1000)
    small, large = raw_pdf(b"BT ET"), make_pdf(["Documento grande"])
    assert read_pdf(small).error is None
    assert read_pdf(large).text == "Documento grande"
    assert calls == [len(large)]
