"""Helpers for the document tests: settings, a case row, case data, QR decoding, validation."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyzbar.pyzbar import decode
from sqlalchemy.orm import Session

from mailflow.config import Institution, Settings
from mailflow.documents.pki import DemoPki
from mailflow.documents.templates import CaseData, ReceivedFile
from mailflow.store.models import Case

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "documents"
NOW = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)  # 10:30 in Lima
PUBLIC_URL = "https://verifica.cepr.example"

CAMPOS = {
    "nombres_apellidos": "María José Pérez Gómez",
    "nacionalidad": "venezolana",
    "sexo": "F",
    "fecha_nacimiento": "1990-05-04",
    "documento_identidad": "V-12345678",
    "carne_extranjeria": "001234567",
    "destino": "Bogotá, Colombia",
    "motivo": "visita familiar",
    "fecha_salida": "2026-12-01",
    "fecha_retorno": "2026-12-20",
    "telefono": "+51987654321",
}
TRAMITES = {
    "cargo": ("reconsideracion", "Recurso de Reconsideración"),
    "oficio": ("prorroga_residencia", "Prórroga de residencia"),
    "autorizacion_viaje": ("autorizacion_viaje", "Autorización de Viaje"),
}
RECURSO_SHA = "3f2a9c" + "0123456789abcdef" * 3 + "a1b2c3d4e5"


def make_settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        templates_dir=ROOT / "templates",
        institution=Institution(public_url=PUBLIC_URL),
    )


def add_case(session: Session, tramite: str, number: str = "EXP-2026-000123") -> Case:
    case = Case(
        number=number,
        year=2026,
        seq=int(number[-6:]),
        tramite=tramite,
        machine=tramite,
        state="recibido",
        applicant_email="maria@example.org",
        applicant_name=CAMPOS["nombres_apellidos"],
        received_at=NOW,
        legal_receipt_day=dt.date(2026, 11, 23),
        due_date=dt.date(2026, 12, 16),
        fields=dict(CAMPOS),
    )
    session.add(case)
    session.flush()
    return case


def case_data(case: Case, kind: str, **campos: str) -> CaseData:
    tramite, nombre = TRAMITES[kind]
    return CaseData(
        case_id=case.id,
        expediente=case.number,
        tramite=tramite,
        tramite_nombre=nombre,
        campos={**CAMPOS, **campos},
        received_at=case.received_at,
        legal_receipt_day=case.legal_receipt_day,
        due_date=case.due_date,
        documentos=(
            ReceivedFile("recurso_reconsideracion_firmado.pdf", RECURSO_SHA, 48211),
            ReceivedFile("resolucion_notificada.pdf", "b" * 64, 10233),
        ),
    )


def page_png(pdf_path: Path, png_stem: Path, dpi: int = 150) -> Path:
    """Render page 1 with pdftoppm; returns the PNG path."""
    png_stem.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-png",
            "-singlefile",
            "-f",
            "1",
            str(pdf_path),
            str(png_stem),
        ],
        check=True,
        capture_output=True,
    )
    return png_stem.with_suffix(".png")


def qr_texts(png: Path) -> list[str]:
    with Image.open(png) as image:
        return [symbol.data.decode() for symbol in decode(image)]


def validate(pdf: bytes, pki: DemoPki) -> PdfSignatureStatus:
    reader = PdfFileReader(io.BytesIO(pdf))
    (embedded,) = reader.embedded_signatures
    context = ValidationContext(trust_roots=[pki.ca.asn1_cert()], allow_fetching=False)
    return validate_pdf_signature(embedded, context)
