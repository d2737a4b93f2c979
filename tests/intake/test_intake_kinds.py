"""Issue 13's seven kinds, table-driven: each row is one way real mail carries a request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailflow.app import App
from mailflow.config import load_settings
from mailflow.documents.pki import Identity, issue_person_certificate
from mailflow.intake.checks import CHECKS, TABLE
from mailflow.intake.clerk import Intake
from mailflow.intake.decision import Decision
from mailflow.intake.fields import extract_fields
from mailflow.mail.defects import DefectCode
from mailflow.mail.parse import parse_message
from mailflow.ops.checking import check_bytes
from tests.corpus.compose import Kit, make_kit
from tests.support.intake_mail import (
    mail,
    mime_entity,
    raw,
    smime_opaque,
    winmail,
    with_enclosed,
)
from tests.support.pdfs import (
    encrypted_pdf,
    make_pdf,
    raw_pdf,
    scanned_pdf,
    sign_pdf,
    tamper_signed_range,
)

ROOT = Path(__file__).resolve().parents[2]
ANA = "Ana María Torres Ruiz <ana.torres@example.com>"
APELACION = (
    "Señores de la CEPR:\n"
    "Por medio del presente interpongo recurso de apelación contra la resolución notificada.\n"
    "Motivo: no se valoraron las pruebas de persecución que presenté.\n"
    "Nombres y apellidos: Ana María Torres Ruiz\n"
    "Pasaporte: 123456789\n"
    "Celular: 987 654 321\n"
    "Correo: ana.torres@example.com\n"
)
RENUNCIA = (
    "Señores:\nPresento mi renuncia voluntaria a la solicitud de refugio.\n"
    "Motivo: regreso a mi país.\n"
    "Nombres y apellidos: Ana María Torres Ruiz\n"
    "Nacionalidad: venezolana\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987654321\n"
)
DATOS = (
    "Nombres y apellidos: Ana María Torres Ruiz\n"
    "Nacionalidad: venezolana\n"
    "Pasaporte: 123456789\n"
    "Teléfono: 987 654 321\n"
)
DUPLICADO = (
    "Buenas noches, perdí mi carné de extranjería y solicito el duplicado.\n"
    "Nombres y apellidos: Ana María Torres Ruiz\n"
    "Sexo: femenino\n"
    "Nacionalidad: venezolana\n"
    "Pasaporte: 123456789\n"
    "Carné de extranjería: 001928374\n"
    "Fecha de nacimiento: 30/01/1995\n"
    "Celular: 933 221 100\n"
)
ESCRITO = [
    "RECURSO DE APELACION",
    "Ana Maria Torres Ruiz, pasaporte 123456789",
    "Interpongo recurso.",
]
CARTA_RENUNCIA = [
    "Señor Presidente de la Comisión Especial para los Refugiados",
    "Presento mi renuncia voluntaria a la solicitud de refugio.",
    "Ana María Torres Ruiz",
]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8


@dataclass(frozen=True)
class Want:
    """What the decision must say; None/empty means "not checked"."""

    tramite: str | None
    disposition: str
    signature: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    no_flags: tuple[str, ...] = ()
    reason: str | None = None  # a regular expression one of the reasons must match


@dataclass
class Pki:
    """The test CA and people's certificates, made once per module."""

    kit: Kit
    directory: Path
    made: dict[tuple[str, str | None], Identity] = field(default_factory=dict)

    def person(self, name: str, serial: str | None = None) -> Identity:
        key = (name, serial)
        if key not in self.made:
            self.made[key] = issue_person_certificate(
                self.kit.ca,
                name,
                self.directory,
                stem=f"p{len(self.made)}",
                serial_number=serial,
                reuse=False,
            )
        return self.made[key]

    def signed(self, lines: list[str], *signers: Identity) -> bytes:
        data = make_pdf(lines)
        for i, who in enumerate(signers, 1):
            data = sign_pdf(data, who, [self.kit.ca], field_name=f"Firma{i}")
        return data


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("kinds-pki")
    return Pki(make_kit(directory), directory / "people")


@pytest.fixture(scope="module")
def app(pki: Pki) -> App:
    settings = load_settings(ROOT / "config.yaml", env={})
    signatures = settings.signatures.model_copy(update={"trust_roots": (pki.kit.ca_pem,)})
    built = App(settings.model_copy(update={"signatures": signatures}))
    built.validate()
    return built


def _check(decision: Decision, want: Want) -> None:
    detail = f"reasons={list(decision.reasons)} fields={decision.fields} flags={decision.flags}"
    assert decision.tramite == want.tramite, detail
    assert decision.disposition == want.disposition, detail
    if want.signature is not None:
        assert decision.signature.status == want.signature, detail
    for fid, value in want.fields.items():
        assert decision.fields.get(fid) == value, f"{fid}: {detail}"
    if want.missing is not None:
        assert sorted(decision.missing) == sorted(want.missing), detail
    assert set(want.flags) <= set(decision.flags), detail
    assert not set(want.no_flags) & set(decision.flags), detail
    if want.reason is not None:
        assert any(re.search(want.reason, r) for r in decision.reasons), detail
    for reason in decision.reasons:  # kind 7: what people read
        assert not re.search(r"[\x00-\x1f\x7f]", reason), reason
        assert not re.search(r"\b(?:invalid|Error|Traceback|None)\b|\\x[0-9a-f]{2}", reason)


Build = Callable[[Pki], bytes]


def _apelacion_pdf(p: Pki) -> bytes:
    return p.signed(ESCRITO, p.person("Ana María Torres Ruiz"))


KIND1: dict[str, tuple[Build, Want]] = {
    "winmail_con_escrito_firmado": (
        lambda p: winmail(
            "Recurso de Apelación",
            APELACION,
            [("Recurso_Apelacion_firmado.pdf", _apelacion_pdf(p))],
            sender=ANA,
        ),
        Want("apelacion", "accept", "valid", {"documento_identidad": "123456789"}, ()),
    ),
    "winmail_datos_solo_dentro": (
        lambda p: mail(
            "Actualización de datos",
            "Buenos días, adjunto mi solicitud.",
            sender=ANA,
            attachments=[
                (
                    "winmail.dat",
                    "application/ms-tnef",
                    __import__("tests.support.intake_mail", fromlist=["tnef"]).tnef(DATOS, []),
                )
            ],
        ),
        Want("actualizacion_datos", "accept", "absent", {"telefono": "+51987654321"}, ()),
    ),
    "reenvio_como_adjunto_rfc822": (
        lambda p: with_enclosed(
            "RV: Cambio de clave",
            "Reenvío mi pedido porque no tengo respuesta.",
            mail(
                "Cambio de clave y contraseña",
                "Solicito nueva clave.\nNombre completo: Ana María Torres Ruiz\n"
                "Cédula: V-12.345.678\nWhatsApp: +51 987 654 321\n",
                sender=ANA,
            ),
            sender=ANA,
        ),
        Want("cambio_clave", "accept", None, {"documento_identidad": "V12345678"}, ()),
    ),
    "smime_opaco_signed_data": (
        lambda p: smime_opaque(
            mime_entity(APELACION, [("recurso.pdf", "application/pdf", _apelacion_pdf(p))]),
            p.person("Ana María Torres Ruiz"),
            sender=ANA,
            subject="Recurso de Apelación",
        ),
        Want("apelacion", "accept", "valid", {"telefono": "+51987654321"}, ()),
    ),
    "winmail_danado": (
        lambda p: mail(
            "Actualización de datos",
            DATOS,
            sender=ANA,
            attachments=[("winmail.dat", "application/ms-tnef", b"not a TNEF stream at all")],
        ),
        Want("actualizacion_datos", "review", reason="contenedor winmail.dat"),
    ),
}

GMAIL_FWD = (
    "Les reenvío mi solicitud del mes pasado.\n\n"
    "---------- Forwarded message ---------\n"
    "De: Ana María Torres Ruiz <ana.torres@example.com>\n"
    "Date: lun, 11 may 2026 a las 09:14\n"
    "Subject: Actualización de datos\n"
    "To: <solicitantesrefugio@cepr.example>\n\n\n"
    "Buenos días, solicito actualizar mis datos.\n\n" + DATOS
)
OUTLOOK_FWD = (
    "Buenas tardes, vuelvo a enviar.\n\n"
    "________________________________\n"
    "De: Ana María Torres Ruiz <ana.torres@example.com>\n"
    "Enviado: martes, 12 de mayo de 2026 10:05\n"
    "Para: solicitantesrefugio@cepr.example\n"
    "Asunto: Actualización de datos\n\n" + DATOS
)
APPLE_FWD = (
    "Enviado desde mi iPhone\n\n"
    "Inicio del mensaje reenviado:\n\n"
    "De: Ana María Torres Ruiz <ana.torres@example.com>\n"
    "Fecha: 12 de mayo de 2026, 10:05:11 GMT-5\n"
    "Para: solicitantesrefugio@cepr.example\n"
    "Asunto: Actualización de datos\n\n" + DATOS
)
OTHER_FWD = (
    "Reenvío el pedido de mi hermana.\n\n"
    "-------- Mensaje reenviado --------\n"
    "Asunto: Actualización de datos\n"
    "De: Ana Torres <ana.otro@example.net>\n\n" + DATOS
)
REPLY_QUOTING_US = (
    "Ya envié todo lo que piden.\n\n"
    "De: Mesa de Partes <mesadepartes@cepr.example>\n"
    "Enviado: martes, 12 de mayo de 2026 10:05\n"
    "Para: ana.torres@example.com\n"
    "Asunto: Observación\n\n"
    "Teléfono: 911 222 333\n"
)
KIND2: dict[str, tuple[Build, Want]] = {
    "gmail_reenvio_propio": (
        lambda p: mail("Fwd: Actualización de datos", GMAIL_FWD, sender=ANA),
        Want("actualizacion_datos", "accept", fields={"telefono": "+51987654321"}, missing=()),
    ),
    "outlook_reenvio_propio": (
        lambda p: mail("RV: Actualización de datos", OUTLOOK_FWD, sender=ANA),
        Want("actualizacion_datos", "accept", fields={"documento_identidad": "123456789"}),
    ),
    "apple_reenvio_propio": (
        lambda p: mail("Fwd: Actualización de datos", APPLE_FWD, sender=ANA),
        Want("actualizacion_datos", "accept", missing=()),
    ),
    "reenvio_ajeno_con_nota_corta": (
        lambda p: mail("Fwd: Actualización de datos", OTHER_FWD, sender=ANA),
        Want("actualizacion_datos", "accept", missing=()),
    ),
    "respuesta_que_cita_a_la_mesa": (
        lambda p: mail("RE: Actualización de datos", REPLY_QUOTING_US + DATOS, sender=ANA),
        Want("actualizacion_datos", "observe", reason="Faltan requisitos"),
    ),
}

KIND3: dict[str, tuple[Build, Want]] = {
    "denuncia_escaneada_por_contenido": (
        lambda p: mail(
            "Duplicado de carné de extranjería",
            DUPLICADO,
            sender=ANA,
            attachments=[
                (
                    "CamScanner 16-06-2026 19.20.pdf",
                    "application/pdf",
                    make_pdf(["POLICIA NACIONAL DEL PERU", "CONSTANCIA DE DENUNCIA POLICIAL"]),
                )
            ],
        ),
        Want("duplicado_carne_extranjeria", "accept", "unsigned", missing=()),
    ),
    "denuncia_comisaria_nombre_generico": (
        lambda p: mail(
            "Duplicado de carné de extranjería",
            DUPLICADO,
            sender=ANA,
            attachments=[
                ("documento.pdf", "application/pdf", make_pdf(["Comisaría de San Juan", "..."]))
            ],
        ),
        Want("duplicado_carne_extranjeria", "accept", missing=()),
    ),
    "denuncia_en_foto": (
        lambda p: mail(
            "Duplicado de carné de extranjería",
            DUPLICADO + "Adjunto foto de la denuncia.\n",
            sender=ANA,
            attachments=[("IMG_2031.jpg", "image/jpeg", JPEG)],
        ),
        Want("duplicado_carne_extranjeria", "review", reason=r"«IMG_2031\.jpg» es una foto"),
    ),
    "denuncia_en_foto_heic": (
        lambda p: mail(
            "Duplicado de carné de extranjería",
            DUPLICADO,
            sender=ANA,
            attachments=[("IMG_0001.HEIC", "image/heic", b"\x00\x00\x00\x18ftypheic" + JPEG)],
        ),
        Want("duplicado_carne_extranjeria", "review", reason="foto o imagen"),
    ),
    "denuncia_pdf_solo_imagen": (
        lambda p: mail(
            "Duplicado de carné de extranjería",
            DUPLICADO,
            sender=ANA,
            attachments=[("scan0001.pdf", "application/pdf", raw_pdf(b"q 10 0 0 10 0 0 cm Q"))],
        ),
        Want("duplicado_carne_extranjeria", "review", reason="PDF sin texto legible"),
    ),
    "datos_en_pdf_con_contrasena": (
        lambda p: mail(
            "Actualización de datos",
            "Adjunto mis datos.",
            sender=ANA,
            attachments=[("datos.pdf", "application/pdf", encrypted_pdf(DATOS.splitlines()))],
        ),
        Want("actualizacion_datos", "review", reason="protegido con contraseña"),
    ),
}


def _apelacion_with(pdfs: list[tuple[str, bytes]], body: str = APELACION) -> bytes:
    return mail(
        "Recurso de Apelación",
        body,
        sender=ANA,
        attachments=[(n, "application/pdf", d) for n, d in pdfs],
    )


KIND5: dict[str, tuple[Build, Want]] = {
    "firma_del_solicitante": (
        lambda p: _apelacion_with([("recurso.pdf", _apelacion_pdf(p))]),
        Want("apelacion", "accept", "valid", no_flags=("firmante_distinto",)),
    ),
    "firma_de_otra_persona": (
        lambda p: _apelacion_with([("recurso.pdf", p.signed(ESCRITO, p.person("Pedro Gómez")))]),
        Want(
            "apelacion",
            "review",
            "valid",
            flags=("firmante_distinto",),
            reason="«Pedro Gómez», que no coincide con «Ana María Torres Ruiz»",
        ),
    ),
    "nombre_en_otro_orden_sin_tildes": (
        lambda p: _apelacion_with(
            [("recurso.pdf", p.signed(ESCRITO, p.person("TORRES RUIZ ANA MARIA")))]
        ),
        Want("apelacion", "accept", "valid", no_flags=("firmante_distinto",)),
    ),
    "sin_segundo_nombre": (
        lambda p: _apelacion_with(
            [("recurso.pdf", p.signed(ESCRITO, p.person("Ana Torres Ruiz")))]
        ),
        Want("apelacion", "accept", "valid"),
    ),
    "numero_de_documento_en_el_certificado": (
        lambda p: _apelacion_with(
            [("recurso.pdf", p.signed(ESCRITO, p.person("A. M. T. R.", "PAS123456789")))]
        ),
        Want("apelacion", "accept", "valid"),
    ),
    "firma_conjunta_con_abogado": (
        lambda p: _apelacion_with(
            [
                (
                    "recurso.pdf",
                    p.signed(
                        ESCRITO,
                        p.person("Carlos Abogado Méndez"),
                        p.person("Ana María Torres Ruiz"),
                    ),
                )
            ]
        ),
        Want("apelacion", "accept", "valid"),
    ),
    "firma_conjunta_sin_el_solicitante": (
        lambda p: _apelacion_with(
            [
                (
                    "recurso.pdf",
                    p.signed(ESCRITO, p.person("Carlos Abogado Méndez"), p.person("Luisa Paz")),
                )
            ]
        ),
        Want("apelacion", "review", "valid", flags=("firmante_distinto",)),
    ),
    "escrito_sin_firma_y_otro_pdf_firmado": (
        lambda p: _apelacion_with(
            [
                ("recurso.pdf", make_pdf(ESCRITO)),
                (
                    "certificado_estudios.pdf",
                    p.signed(["Certificado de estudios"], p.person("Ana María Torres Ruiz")),
                ),
            ]
        ),
        Want("apelacion", "accept", "unsigned", flags=("firma_manuscrita_por_confirmar",)),
    ),
    "solo_un_pdf_firmado_que_no_es_el_escrito": (
        lambda p: _apelacion_with(
            [
                (
                    "constancia.pdf",
                    p.signed(["Constancia de trabajo"], p.person("Ana María Torres Ruiz")),
                )
            ]
        ),
        Want("apelacion", "review", reason="no parece ser el escrito"),
    ),
}

KIND6: dict[str, tuple[Build, Want]] = {
    "renuncia_firma_manuscrita": (
        lambda p: mail(
            "Renuncia",
            RENUNCIA,
            sender=ANA,
            attachments=[("carta_renuncia.pdf", "application/pdf", make_pdf(CARTA_RENUNCIA))],
        ),
        Want(
            "renuncia",
            "accept",
            "unsigned",
            missing=(),
            flags=("firma_manuscrita_por_confirmar",),
            reason="confirmar la firma manuscrita",
        ),
    ),
    "recurso_escaneado_sin_texto": (
        lambda p: _apelacion_with([("scan.pdf", scanned_pdf())]),
        Want("apelacion", "accept", "unsigned", flags=("firma_manuscrita_por_confirmar",)),
    ),
    "pdf_sin_texto_ni_imagen_no_es_escrito": (
        lambda p: _apelacion_with([("x.pdf", raw_pdf(b"q 10 0 0 10 0 0 cm Q"))]),
        Want("apelacion", "review", "unsigned", missing=("documento_firmado",), reason="sin texto"),
    ),
    "pdf_con_otro_texto_no_es_escrito": (
        lambda p: _apelacion_with([("recurso.pdf", make_pdf(["nivel nivel nivel nivel"] * 3))]),
        Want("apelacion", "observe", "unsigned", missing=("documento_firmado",)),
    ),
    "sin_escrito": (
        lambda p: mail("Recurso de Apelación", APELACION, sender=ANA),
        Want("apelacion", "observe", "absent", missing=("documento_firmado",)),
    ),
    "firma_no_confiable": (
        lambda p: _apelacion_with(
            [("recurso.pdf", sign_pdf(make_pdf(ESCRITO), p.kit.stranger, [p.kit.stranger_ca]))]
        ),
        Want("apelacion", "review", "untrusted", flags=("firma_no_valida",), reason="confianza"),
    ),
    "firma_alterada": (
        lambda p: _apelacion_with([("recurso.pdf", tamper_signed_range(_apelacion_pdf(p)))]),
        Want("apelacion", "review", "invalid", flags=("firma_no_valida",)),
    ),
}


def _run_table(app: App, pki: Pki, table: dict[str, tuple[Build, Want]], name: str) -> None:
    build, want = table[name]
    _check(check_bytes(app, build(pki)), want)


@pytest.mark.parametrize("name", sorted(KIND1))
def test_kind1_containers(name: str, app: App, pki: Pki) -> None:
    _run_table(app, pki, KIND1, name)


@pytest.mark.parametrize("name", sorted(KIND2))
def test_kind2_forwards(name: str, app: App, pki: Pki) -> None:
    _run_table(app, pki, KIND2, name)


@pytest.mark.parametrize("name", sorted(KIND3))
def test_kind3_attachments_by_content(name: str, app: App, pki: Pki) -> None:
    _run_table(app, pki, KIND3, name)


@pytest.mark.parametrize("name", sorted(KIND5))
def test_kind5_signature_is_the_applicants(name: str, app: App, pki: Pki) -> None:
    _run_table(app, pki, KIND5, name)


@pytest.mark.parametrize("name", sorted(KIND6))
def test_kind6_handwritten_signature(name: str, app: App, pki: Pki) -> None:
    _run_table(app, pki, KIND6, name)


def test_kind6_procedure_may_ask_review_for_unsigned_escritos(app: App, pki: Pki) -> None:
    catalogue = app.catalogue
    strict = catalogue.get("renuncia").model_copy(update={"unsigned_escrito": "review"})
    tramites = {**catalogue.tramites, "renuncia": strict}
    intake = Intake(
        type(catalogue)(tramites, catalogue.topics),
        app.vocabulary,
        app.intake.classifier,
        app.calendario,
        app.intake.trust_roots,
    )
    build, _ = KIND6["renuncia_firma_manuscrita"]
    msg = parse_message(build(pki))
    decision = intake.decide(msg, received=msg.date)  # type: ignore[arg-type]
    _check(decision, Want("renuncia", "review", "unsigned", reason="firma manuscrita"))
    assert "firma_manuscrita_revision" in decision.checks


LABELS: list[tuple[str, str, str]] = [
    (
        "Nombres y Apellidos completos: Ana María Torres Ruiz",
        "nombres_apellidos",
        "Ana María Torres Ruiz",
    ),
    (
        "Nombres y apellidos del solicitante: Ana María Torres Ruiz",
        "nombres_apellidos",
        "Ana María Torres Ruiz",
    ),
    ("N° de Pasaporte o Cédula: 123456789", "documento_identidad", "123456789"),
    ("Nro. Carnet de Extranjería - 001234567", "carne_extranjeria", "001234567"),
    ("Nro. de Carné de Extranjería: 001234567", "carne_extranjeria", "001234567"),
    ("Teléfono : 987 654 321", "telefono", "+51987654321"),
    ("Teléfono – 987 654 321", "telefono", "+51987654321"),
    ("Teléfono:987654321", "telefono", "+51987654321"),
    ("Celular 987654321", "telefono", "+51987654321"),
    ("Nombre completo\nAna María Torres Ruiz\n", "nombres_apellidos", "Ana María Torres Ruiz"),
    (
        "| Nombres y apellidos | Ana María Torres Ruiz |",
        "nombres_apellidos",
        "Ana María Torres Ruiz",
    ),
    ("Nacionalidad\tvenezolana", "nacionalidad", "venezolana"),
    ("Correo electrónico de contacto: ana@example.com", "correo", "ana@example.com"),
    ("Fecha de Nacimiento (dd/mm/aaaa): 22/11/1993", "fecha_nacimiento", "1993-11-22"),
    ("Teléfono actual: 987654321", "telefono", "+51987654321"),
    ("NOMBRES Y APELLIDOS ANA MARIA TORRES RUIZ", "nombres_apellidos", "Ana Maria Torres Ruiz"),
    (
        "Nombres y Apellidos Completos\nAna María Torres Ruiz",
        "nombres_apellidos",
        "Ana María Torres Ruiz",
    ),
    ("Nombres y apellidos - Ana María Torres Ruiz", "nombres_apellidos", "Ana María Torres Ruiz"),
    ("Pasaporte 123456789", "documento_identidad", "123456789"),
    ("Número de Carné de Extranjería (CE): 001234567", "carne_extranjeria", "001234567"),
    ("Teléfono de contacto (WhatsApp): +51 987 654 321", "telefono", "+51987654321"),
    ("Nombres y apellidos: Ana Torres | Pasaporte: 123456789", "documento_identidad", "123456789"),
]


@pytest.mark.parametrize(("text", "field_id", "value"), LABELS)
def test_kind4_label_grammar(text: str, field_id: str, value: str, app: App) -> None:
    found = extract_fields(text, app.vocabulary)
    assert field_id in found and found[field_id].value == value, found


SUBJECTS: list[tuple[str, str | None]] = [
    ("ASUNTO: Actualización de datos", "actualizacion_datos"),
    ("Asunto del correo: Prórroga de residencia", "prorroga_residencia"),
    ("RECURSO DE APELACION - Ana María Torres Ruiz - Pasaporte 123456789", "apelacion"),
    ("Keila Bermúdez - prorroga de residencia CE 002987654", "prorroga_residencia"),
    ("Renuncia al trámite de solicitud de refugio", "renuncia"),
    ("Solicitud de refugio", None),
]


@pytest.mark.parametrize(("subject", "tramite"), SUBJECTS)
def test_kind4_subjects(subject: str, tramite: str | None, app: App) -> None:
    assert app.intake.classifier.classify(subject, "").tramite == tramite


def test_kind4_data_in_pdf_body_text(app: App) -> None:
    pdf = make_pdf(["Solicitud de actualización de datos", *DATOS.splitlines()])
    decision = check_bytes(
        app,
        mail(
            "Actualización de datos",
            "Adjunto mi solicitud.",
            sender=ANA,
            attachments=[("solicitud.pdf", "application/pdf", pdf)],
        ),
    )
    _check(decision, Want("actualizacion_datos", "accept", missing=()))


def test_kind4_data_in_html_table_cells(app: App) -> None:
    rows = "".join(
        f"<tr><td><b>{k}</b></td><td>{v}</td></tr>"
        for k, v in (line.split(": ", 1) for line in DATOS.splitlines())
    )
    html = f"<html><body><p>Solicito actualizar mis datos</p><table>{rows}</table></body></html>"
    decision = check_bytes(app, mail("Actualización de datos", "", sender=ANA, html=html))
    _check(decision, Want("actualizacion_datos", "accept", missing=()))


HEADERS_7 = [
    b"From: Ana <ana.torres@example.com>",
    b"To: refugiados@cepr.example",
    b"Date: Mon, 15 Jun 2026 08:10:00 -0500",
    b"MIME-Version: 1.0",
]


@pytest.mark.parametrize(
    ("subject", "charset", "text"),
    [
        ("在留期間延長の申請", "shift_jis", "延長をお願いします。"),
        ("关于延长居留许可的申请", "gb2312", "我申请延长居留。"),
        ("Продление вида на жительство", "koi8-r", "Прошу продлить."),
        ("Prórroga de residencia", "iso-8859-1", "Solicito la prórroga."),
    ],
)
def test_kind7_raw_8bit_subject_in_any_charset(subject: str, charset: str, text: str) -> None:
    content_type = f"Content-Type: text/plain; charset={charset}".encode()
    message = raw(
        [*HEADERS_7, b"Subject: " + subject.encode(charset), content_type],
        text.encode(charset),
    )
    parsed = parse_message(message)
    assert parsed.subject == subject
    assert parsed.text.strip() == text


def test_kind7_unlabelled_latin1_subject_is_classified(app: App) -> None:
    message = raw([*HEADERS_7, "Subject: Prórroga de residencia".encode("latin-1")], b"Hola")
    assert check_bytes(app, message).tramite == "prorroga_residencia"


def test_kind7_damaged_header_line_does_not_hide_the_subject(app: App) -> None:
    message = raw(
        [
            b"From: Ana <ana.torres@example.com>",
            b"To: refugiados@cepr.example",
            b"this line is not a header",
            b"Subject: =?utf-8?Q?Pr=C3=B3rroga_de_residencia?=",
            b"Date: Mon, 15 Jun 2026 08:10:00 -0500",
        ],
        b"Nombres y apellidos: Ana Torres\r\n",
    )
    decision = check_bytes(app, message)
    assert decision.tramite == "prorroga_residencia"
    assert decision.disposition == "observe"  # the damage alone does not send it to staff


@pytest.mark.parametrize(
    "subject", ["延长居留", "Продление вида на жительство", "123456789", "Mi\x1bsolicitud\x07"]
)
def test_kind7_subject_in_any_script_is_not_empty(subject: str, app: App) -> None:
    message = mail(subject, "Hola.", sender=ANA)
    decision = check_bytes(app, message)
    assert decision.disposition == "review"
    assert not any("vacío" in r for r in decision.reasons), decision.reasons
    shown = re.sub(r"[\x00-\x1f]", " ", subject).split()[0]
    assert any(f"«{shown}" in r for r in decision.reasons), decision.reasons
    _check(decision, Want(None, "review"))


def test_decision_table_names_only_registered_checks_with_descriptions() -> None:
    assert [name for name, _ in TABLE] and all(name in CHECKS for name, _ in TABLE)
    for check in CHECKS.values():
        assert check.description and check.name
    assert {action for _, action in TABLE} <= {"review", "observe", "flag", "note"}


def test_kind1_containers_are_bounded_in_depth_and_count(pki: Pki) -> None:
    from tests.support.intake_mail import tnef

    signer = pki.person("Ana María Torres Ruiz")
    inner = mime_entity(APELACION)
    for _ in range(6):  # signed-data inside signed-data, deeper than anyone sends
        inner = smime_opaque(inner, signer, sender=ANA, subject="Recurso de Apelación")
    parsed = parse_message(inner)
    assert parsed.subject == "Recurso de Apelación"
    assert "interpongo recurso" not in parsed.text  # not opened past the depth limit
    assert any(a.filename.endswith(".p7m") for a in parsed.attachments)

    many = [(f"f{i}.txt", b"x") for i in range(500)]
    flood = mail(
        "Actualización de datos",
        DATOS,
        sender=ANA,
        attachments=[("winmail.dat", "application/ms-tnef", tnef(DATOS, many))],
    )
    parsed = parse_message(flood)
    assert len(parsed.attachments) <= 50
    assert any(d.code is DefectCode.TNEF_TOO_MANY_FILES for d in parsed.defects)
    assert any("demasiados adjuntos" in str(d) for d in parsed.defects)


@pytest.mark.parametrize("shape", ["adjunto", "en_linea"])
def test_kind2_bare_forward_subject_is_classified_by_the_forwarded_one(
    shape: str, app: App
) -> None:
    inner = mail("Prórroga de residencia", "Solicito la prórroga.\n" + DUPLICADO, sender=ANA)
    if shape == "adjunto":
        message = with_enclosed("RV:", "Reenvío.", inner, sender=ANA)
    else:
        body = (
            "Reenvío.\n\n---------- Forwarded message ---------\n"
            "De: Ana María Torres Ruiz <ana.torres@example.com>\n"
            "Date: lun, 11 may 2026 a las 09:14\nSubject: Prórroga de residencia\n\n" + DUPLICADO
        )
        message = mail("Fwd:", body, sender=ANA)
    decision = check_bytes(app, message)
    assert decision.tramite == "prorroga_residencia", decision.reasons
    assert decision.fields.get("carne_extranjeria") == "001928374"


def test_kind1_forwarded_html_only_message_is_read(app: App) -> None:
    rows = "".join(f"<p>{line}</p>" for line in DATOS.splitlines())
    inner = mail("Actualización de datos", "", sender=ANA, html=f"<html><body>{rows}</body></html>")
    message = with_enclosed("RV: Actualización de datos", "Reenvío.", inner, sender=ANA)
    _check(check_bytes(app, message), Want("actualizacion_datos", "accept", missing=()))


def test_kind2_reply_quoting_ones_own_request_is_the_request(app: App) -> None:
    quoted = "\n".join(f"> {line}" for line in ("Buenos días, solicito.", "", *DATOS.splitlines()))
    body = (
        "Reitero mi pedido.\n\n"
        "El lun, 11 may 2026 a las 09:14, Ana María Torres Ruiz <ana.torres@example.com> "
        "escribió:\n" + quoted + "\n"
    )
    decision = check_bytes(app, mail("RE: Actualización de datos", body, sender=ANA))
    _check(decision, Want("actualizacion_datos", "accept", missing=()))
    theirs = body.replace("ana.torres@example.com", "mesadepartes@cepr.example").replace(
        "Ana María Torres Ruiz", "Mesa de Partes"
    )
    decision = check_bytes(app, mail("RE: Actualización de datos", theirs, sender=ANA))
    _check(decision, Want("actualizacion_datos", "observe"))
