"""Turn a request spec into message bytes and into the decision the rules demand for it."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailflow.documents.pki import Identity, create_ca, issue_person_certificate
from tests.corpus.build import Mail, Part
from tests.corpus.people import (
    MAILERS,
    PERSONAS,
    SIGNOFFS,
    Persona,
    Row,
    html_divs,
    html_table,
    label,
    render_rows,
)
from tests.support.pdfs import make_pdf, sign_pdf, tamper_signed_range

LIMA = dt.timezone(dt.timedelta(hours=-5))
SIGNED = ("reconsideracion", "apelacion", "renuncia", "autorizacion_viaje")
# The catalogue as published (DESIGN.md): required fields in order, the conditional carné, attachments.
REQUIRED: dict[str, tuple[str, ...]] = {
    "actualizacion_datos": ("nombres_apellidos", "nacionalidad", "documento_identidad", "telefono"),
    "cambio_clave": ("nombres_apellidos", "documento_identidad", "telefono", "correo"),
    "reconsideracion": ("motivo", "nombres_apellidos", "documento_identidad", "telefono", "correo"),
    "apelacion": ("motivo", "nombres_apellidos", "documento_identidad", "telefono", "correo"),
    "renuncia": ("motivo", "nombres_apellidos", "nacionalidad", "documento_identidad", "telefono"),
    "prorroga_residencia": (
        "nombres_apellidos",
        "sexo",
        "nacionalidad",
        "documento_identidad",
        "carne_extranjeria",
        "fecha_nacimiento",
        "telefono",
    ),
    "duplicado_carne_extranjeria": (
        "nombres_apellidos",
        "sexo",
        "nacionalidad",
        "documento_identidad",
        "carne_extranjeria",
        "fecha_nacimiento",
        "telefono",
    ),
    "autorizacion_viaje": (
        "motivo",
        "destino",
        "fecha_salida",
        "fecha_retorno",
        "nombres_apellidos",
        "carne_extranjeria",
        "telefono",
    ),
}
CONDITIONAL_CARNE = ("actualizacion_datos", "renuncia")
NORMALISED = (
    "documento_identidad",
    "carne_extranjeria",
    "telefono",
    "correo",
    "sexo",
    "fecha_nacimiento",
    "fecha_salida",
    "fecha_retorno",
    "fecha_notificacion",
)


@dataclass(frozen=True)
class Expect:
    """The decision a message must get."""

    disposition: str
    tramite: str | None
    missing: tuple[str, ...] = ()
    signature: str = "absent"
    fields: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kit:
    """Test PKI: the trusted applicant certificate and one from a CA nobody trusts."""

    ca: Identity
    applicant: Identity
    stranger_ca: Identity
    stranger: Identity
    directory: Path | None = None
    people: dict[str, Identity] = field(default_factory=dict, compare=False)

    @property
    def ca_pem(self) -> Path:
        return self.ca.cert_path

    def signer(self, name: str | None) -> Identity:
        """A trusted certificate for the person `name` (None: the generic test applicant)."""
        if name is None or self.directory is None:
            return self.applicant
        if name not in self.people:
            stem = f"persona-{len(self.people)}"
            self.people[name] = issue_person_certificate(
                self.ca, name, self.directory / "people", stem=stem, reuse=False
            )
        return self.people[name]

    def pdf(
        self,
        kind: str,
        lines: list[str],
        form: Mapping[str, str] | None = None,
        signer: str | None = None,
    ) -> bytes:
        """A PDF in one of the signature states: valid, untrusted, invalid, unsigned; `signer`
        names the person whose certificate signs it (default: the generic test applicant)."""
        plain = make_pdf(lines, form)
        if kind == "unsigned":
            return plain
        if kind == "untrusted":
            return sign_pdf(plain, self.stranger, [self.stranger_ca])
        signed = sign_pdf(plain, self.signer(signer), [self.ca])
        return tamper_signed_range(signed) if kind == "invalid" else signed


def make_kit(directory: Path) -> Kit:
    """Create the test CA, an applicant certificate, and an unknown CA with its own signer."""
    ca = create_ca(directory / "ca", "CA de prueba CEPR", stem="ca")
    applicant = issue_person_certificate(
        ca, "Solicitante de Prueba", directory / "ca", stem="applicant"
    )
    other = create_ca(directory / "other", "CA Desconocida", org="Otra Entidad", stem="ca")
    stranger = issue_person_certificate(other, "Firmante Ajeno", directory / "other", stem="signer")
    return Kit(ca, applicant, other, stranger, directory)


@dataclass(frozen=True)
class Req:
    """One applicant's request, described by what it contains rather than by its bytes."""

    name: str
    tramite: str
    who: int  # index into PERSONAS
    style: str  # letter | note | form | dash | html_table | html_div | alt
    subject: str
    when: dt.datetime
    intro: str
    omit: frozenset[str] = frozenset()
    invalid: Mapping[str, str] = field(default_factory=dict)
    status: str | None = None  # refugiado | solicitante | None
    correo_written: bool = False
    pdf: str | None = None  # valid | untrusted | invalid | unsigned | None
    data_in: str = "body"  # body | pdf | form
    notificacion: tuple[str, str] | None = None  # (as written, normalised)
    late: bool = False
    denuncia: str | None = None  # attachment file name
    viaje: tuple[str, str, str, str, str] | None = (
        None  # destino, salida, sal_norm, retorno, ret_norm
    )
    motivo: str = ""
    charset: str = "utf-8"
    declared_charset: str | None = None
    transfer: str = "quoted-printable"
    subject_encoding: str | None = None
    subject_charset: str = "utf-8"
    anonymous_sender: bool = False


def _fields_for(req: Req) -> list[str]:
    wanted = list(REQUIRED[req.tramite])
    if req.tramite in CONDITIONAL_CARNE and req.status == "refugiado":
        wanted.append("carne_extranjeria")
    if req.correo_written and "correo" not in wanted:
        wanted.append("correo")
    if req.notificacion:
        wanted.append("fecha_notificacion")
    wanted += [f for f in req.invalid if f not in wanted]
    return [f for f in wanted if f not in req.omit or f in req.invalid]


def _value(req: Req, p: Persona, fid: str) -> tuple[str, str | None]:
    """(as written, normalised or None when not checked)."""
    if fid in req.invalid:
        return req.invalid[fid], None
    viaje = req.viaje or ("", "", "", "", "")
    table: dict[str, tuple[str, str | None]] = {
        "nombres_apellidos": (p.nombre, None),
        "nacionalidad": (p.nacionalidad, None),
        "documento_identidad": (p.documento[1], p.documento[2]),
        "carne_extranjeria": (p.carne[0], p.carne[1]),
        "telefono": (p.telefono[0], p.telefono[1]),
        "correo": (p.correo, p.correo),
        "sexo": (p.sexo[0], p.sexo[1]),
        "fecha_nacimiento": (p.nacimiento[0], p.nacimiento[1]),
        "motivo": (req.motivo, None),
        "destino": (viaje[0], None),
        "fecha_salida": (viaje[1], viaje[2]),
        "fecha_retorno": (viaje[3], viaje[4]),
        "fecha_notificacion": req.notificacion or ("", None),
    }
    return table[fid]


def render(req: Req, kit: Kit) -> bytes:
    """The message bytes for `req`."""
    p = PERSONAS[req.who]
    rng = random.Random(req.name)
    rows: list[Row] = [
        (label(f, rng, p, req.tramite), _value(req, p, f)[0]) for f in _fields_for(req)
    ]
    signoff = "" if "nombres_apellidos" in req.omit else p.nombre
    closing = rng.choice(
        ["Atentamente,", "Saludos cordiales,", "Gracias de antemano.", "Quedo atento(a),"]
    )
    closing = f"{closing}\n{signoff}" if signoff else closing
    attachments: list[Part] = []
    body_rows = rows
    if req.data_in in ("pdf", "form") or req.pdf:
        pdf_lines = [
            "Señores de la Comisión Especial para los Refugiados",
            "",
            *req.intro.split("\n"),
        ]
        form: dict[str, str] | None = None
        if req.data_in == "pdf":
            pdf_lines += [f"{k}: {v}" for k, v in rows]
            body_rows = []
        elif req.data_in == "form":
            form = {
                label(f, random.Random(f), p, req.tramite): _value(req, p, f)[0]
                for f in _fields_for(req)
            }
            body_rows = []
        pdf_lines += ["", closing.replace("\n", " ")]
        kind = req.pdf or "unsigned"
        name = rng.choice(
            ["solicitud.pdf", "Recurso firmado.pdf", "escrito_firmado.pdf", "SOLICITUD_CEPR.pdf"]
        )
        pdf = kit.pdf(kind, pdf_lines, form, signer=p.nombre)
        attachments.append(Part(name, "application/pdf", pdf))
    if req.denuncia:
        data = (
            kit.pdf(
                "unsigned", ["POLICIA NACIONAL DEL PERU", "Copia certificada de denuncia policial"]
            )
            if req.denuncia.lower().endswith(".pdf")
            else b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
        )
        ctype = "application/pdf" if req.denuncia.lower().endswith(".pdf") else "image/jpeg"
        attachments.append(Part(req.denuncia, ctype, data))
    intro = req.intro
    if req.data_in in ("pdf", "form"):
        intro += "\nAdjunto el documento con mis datos."
    text = (
        f"{intro}\n\n{render_rows(req.style, body_rows)}\n\n{closing}{SIGNOFFS[p.client]}".replace(
            "\n\n\n\n", "\n\n"
        )
    )
    html: str | None = None
    plain: str | None = text
    if req.style == "html_table":
        plain, html = None, html_table(intro, body_rows, closing)
    elif req.style == "html_div":
        plain, html = None, html_divs(intro, body_rows, closing)
    elif req.style == "alt":
        html = html_divs(intro, body_rows, closing)
    sender = (
        p.correo
        if req.anonymous_sender or "nombres_apellidos" in req.omit
        else f"{p.nombre} <{p.correo}>"
    )
    return Mail(
        subject=req.subject,
        sender=sender,
        date=email.utils.format_datetime(req.when),
        text=plain,
        html=html,
        charset=req.charset,
        declared_charset=req.declared_charset,
        transfer=req.transfer,
        subject_encoding=req.subject_encoding,
        subject_charset=req.subject_charset,
        attachments=tuple(attachments),
        message_id=f"{req.name}.{req.when:%Y%m%d%H%M}@{p.correo.split('@')[1]}",
        mailer=MAILERS.get(p.client, ""),
    ).render()


def expect(req: Req) -> Expect:
    """The decision the published rules demand for `req`."""
    p = PERSONAS[req.who]
    written = [f for f in _fields_for(req) if f not in req.invalid]
    present = set(written) | {"correo"}  # correo falls back to the sender's address
    missing = [f for f in REQUIRED[req.tramite] if f not in present]
    refugiado = req.status == "refugiado" or "carne_extranjeria" in req.invalid
    if req.tramite in CONDITIONAL_CARNE and refugiado and "carne_extranjeria" not in present:
        missing.append("carne_extranjeria")
    if req.tramite == "duplicado_carne_extranjeria" and not req.denuncia:
        missing.append("denuncia_policial")
    denuncia_pdf = bool(req.denuncia and req.denuncia.lower().endswith(".pdf"))
    if req.pdf:
        signature = req.pdf
    elif req.data_in != "body" or denuncia_pdf:
        signature = "unsigned"
    else:
        signature = "absent"
    # An escrito without digital signature is received (firma manuscrita, TUO Ley 27444 art. 136):
    # only an absent escrito is missing.
    if req.tramite in SIGNED and signature == "absent":
        missing.append("documento_firmado")
    checked = [
        f for f in written if f in NORMALISED and (f != "correo" or f in REQUIRED[req.tramite])
    ]
    fields = {f: v for f in checked if (v := _value(req, p, f)[1]) is not None}
    if "correo" in REQUIRED[req.tramite]:
        fields.setdefault("correo", p.correo)
    flags: tuple[str, ...] = ("extemporaneo",) if req.late else ()
    if req.tramite in SIGNED and signature == "unsigned":
        flags += ("firma_manuscrita_por_confirmar",)
    review = req.late or (req.tramite in SIGNED and signature in ("untrusted", "invalid"))
    disposition = "review" if review else ("observe" if missing else "accept")
    return Expect(disposition, req.tramite, tuple(missing), signature, fields, flags)


@dataclass(frozen=True)
class Case:
    """A generated message and its expected decision."""

    name: str
    expect: Expect
    make: Callable[[Kit], bytes]


def case_of(req: Req) -> Case:
    return Case(req.name, expect(req), lambda kit: render(req, kit))
