"""Issued documents: readable, signed by the institution, QR-verifiable, numbered, stored once."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pypdf import PdfReader
from starlette.testclient import TestClient

from mailflow.app import App
from mailflow.config import Settings
from mailflow.documents.issuing import issue_document
from mailflow.documents.pki import DemoPki, create_demo_pki
from mailflow.documents.signing import DocumentSigner, SignatureField, signer_from_settings
from mailflow.documents.templates import load_templates
from mailflow.errors import ConfigError
from mailflow.ops.keys import keys_demo
from mailflow.store.db import Database
from mailflow.web import create_app
from tests.support.documents_helpers import (
    CAMPOS,
    NOW,
    OUT,
    PUBLIC_URL,
    RECURSO_SHA,
    add_case,
    case_data,
    make_settings,
    page_png,
    qr_texts,
    validate,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return create_demo_pki(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signer(pki: DemoPki) -> DocumentSigner:
    return DocumentSigner.from_pkcs12(pki.signer_p12, pki.signer_password)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def client(settings: Settings, sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, sqlite_db)) as test_client:
        yield test_client


EXPECTED = {
    "cargo": ["CARGO DE RECEPCIÓN", "Recurso de Reconsideración", RECURSO_SHA, "10:30"],
    "oficio": [
        "OFICIO N° 000001-2026-CEPR/MRE",
        "Superintendencia Nacional de Migraciones",
        "Prórroga de residencia",
        "venezolana",
        "001234567",
    ],
    "autorizacion_viaje": [
        "AUTORIZACIÓN DE VIAJE",
        "Bogotá, Colombia",
        "del 01/12/2026 al 20/12/2026",
    ],
}


@pytest.mark.parametrize("kind", ["cargo", "oficio", "autorizacion_viaje"])
def test_document_is_readable_signed_and_its_qr_confirms_it(
    kind: str,
    settings: Settings,
    sqlite_db: Database,
    signer: DocumentSigner,
    pki: DemoPki,
    client: TestClient,
) -> None:
    with sqlite_db.session() as session:
        case = add_case(session, kind)
        doc = issue_document(
            session, settings, case_data(case, kind), kind, "emision", NOW, signer=signer
        )
    pdf_path = settings.data_dir / doc.path
    assert pdf_path == settings.data_dir / "documents" / doc.sha256[:2] / f"{doc.sha256}.pdf"
    pdf = pdf_path.read_bytes()

    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in [
        *EXPECTED[kind],
        "EXP-2026-000123",
        CAMPOS["nombres_apellidos"],
        "Lima, 23 de noviembre de 2026",
        doc.verification_code[:5],
    ]:
        assert expected in text, f"{expected!r} missing from the {kind} PDF"

    status = validate(pdf, pki)
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE

    png = page_png(pdf_path, OUT / kind)
    (url,) = qr_texts(png)
    assert url == f"{PUBLIC_URL}/verificar/{doc.verification_code}"
    page = client.get(url.removeprefix(PUBLIC_URL))
    assert page.status_code == 200
    assert "Documento válido" in page.text and "no válido" not in page.text
    assert doc.number is not None and doc.number in page.text
    assert "Ma*** Jo** Pé*** Gó***" in page.text and "Pérez" not in page.text


def test_modified_copy_fails_signature_validation(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner, pki: DemoPki
) -> None:
    with sqlite_db.session() as session:
        case = add_case(session, "oficio")
        doc = issue_document(
            session, settings, case_data(case, "oficio"), "oficio", "e", NOW, signer=signer
        )
    pdf = (settings.data_dir / doc.path).read_bytes()
    assert b"(mailflow)" in pdf  # the /Creator string, inside the signed byte range
    forged = pdf.replace(b"(mailflow)", b"(mailfl0w)", 1)
    assert len(forged) == len(pdf)
    status = validate(forged, pki)
    assert not status.intact and not status.bottom_line


def test_oficios_take_consecutive_numbers_and_reissue_returns_the_stored_document(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner
) -> None:
    with sqlite_db.session() as session:
        case = add_case(session, "oficio")
        data = case_data(case, "oficio")
        first = issue_document(session, settings, data, "oficio", "prorroga", NOW, signer=signer)
        second = issue_document(
            session,
            settings,
            data,
            "oficio",
            "duplicado",
            NOW,
            signer=signer,
            oficio_prefix="CEPR/XYZ",
        )
    assert (first.number, second.number) == ("000001-2026-CEPR/MRE", "000002-2026-CEPR/XYZ")
    stored = (settings.data_dir / first.path).read_bytes()
    later = NOW + dt.timedelta(days=3)
    with sqlite_db.session() as session:
        again = issue_document(session, settings, data, "oficio", "prorroga", later, signer=signer)
        third = issue_document(session, settings, data, "oficio", "otro", later, signer=signer)
    assert (again.id, again.sha256, again.number) == (first.id, first.sha256, first.number)
    assert (settings.data_dir / again.path).read_bytes() == stored
    assert third.number == "000003-2026-CEPR/MRE"  # re-issuing took no number
    assert len({first.verification_code, second.verification_code, third.verification_code}) == 3


def test_signing_inside_a_running_event_loop(signer: DocumentSigner, pki: DemoPki) -> None:
    from tests.support.pdfs import make_pdf

    plain = make_pdf(["Prueba de firma"])
    where = SignatureField(0, (100, 100, 330, 158))

    async def both() -> tuple[bytes, bytes]:
        return await signer.async_sign(plain, where), signer.sign(plain, where)

    for signed in asyncio.run(both()):
        assert validate(signed, pki).bottom_line


def test_bad_template_is_reported_with_its_file(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "templates" / "documents"
    for path in source.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "oficio.yaml").write_text("kind: oficio\ntitle: 'OFICIO {{ numero '\n")
    with pytest.raises(ConfigError, match=r"oficio\.yaml.*OFICIO"):
        load_templates(tmp_path)
    (tmp_path / "oficio.yaml").write_text("kind: oficio\ntitle: x\nparrafos: []\n")
    with pytest.raises(ConfigError, match=r"oficio\.yaml.*parrafos"):
        load_templates(tmp_path)
    (tmp_path / "oficio.yaml").unlink()
    with pytest.raises(ConfigError, match="faltan plantillas de documento: oficio"):
        load_templates(tmp_path)


def test_keys_demo_is_idempotent_and_feeds_the_signer(settings: Settings) -> None:
    message = keys_demo(settings)
    keys = settings.data_dir / "keys"
    assert "creados" in message and str(keys / "signer.p12") in message
    p12 = (keys / "signer.p12").read_bytes()
    assert "ya existían" in keys_demo(settings)
    assert (keys / "signer.p12").read_bytes() == p12
    assert "Mesa de Partes" in signer_from_settings(settings, env={}).subject
    wrong = {settings.signing.password_env: "incorrecta"}
    with pytest.raises(ConfigError, match="no se pudo abrir"):
        signer_from_settings(settings, env=wrong)


def _ess_cert_hash(pdf: bytes) -> bytes:
    """The certificate hash in the signature's signing-certificate-v2 attribute."""
    (embedded,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    for attribute in embedded.signer_info["signed_attrs"]:
        if attribute["type"].native == "signing_certificate_v2":
            return bytes(attribute["values"][0]["certs"][0]["cert_hash"].native)
    raise AssertionError("sin atributo signing-certificate-v2")


def test_prepared_signed_attributes_equal_pyhanko_defaults(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner, pki: DemoPki
) -> None:
    """The signing-certificate-v2 attribute encoded once per signer gives, byte for byte, the
    signed attributes pyhanko's own PAdES spec builds for the same document digest."""
    from pyhanko.sign import signers

    with sqlite_db.session() as session:
        case = add_case(session, "cargo")
        doc = issue_document(
            session, settings, case_data(case, "cargo"), "cargo", "e", NOW, signer=signer
        )
    pdf = (settings.data_dir / doc.path).read_bytes()
    (embedded,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    signed_attrs = embedded.signer_info["signed_attrs"]
    (digest,) = [
        a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest"
    ]
    plain = signers.SimpleSigner.load_pkcs12(
        str(pki.signer_p12), passphrase=pki.signer_password.encode()
    )
    assert plain is not None
    expected = asyncio.run(plain.signed_attrs(digest, "sha256", use_pades=True))
    assert signed_attrs.untag().dump() == expected.dump()


def test_the_cached_signer_picks_up_a_rotated_key(
    settings: Settings, sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signer is parsed once per key (not per document), yet a PKCS#12 replaced in place
    signs the next document with the new key and certificate, never the stale cached ones."""
    monkeypatch.delenv(settings.signing.password_env, raising=False)
    keys_demo(settings)
    keys = settings.data_dir / "keys"
    old = create_demo_pki(keys)  # reuses the files keys_demo wrote
    app = App(settings)
    first = app.signer
    assert app.signer is first  # loaded once, reused

    def issue(event: str) -> bytes:
        with sqlite_db.session() as session:
            case = add_case(session, "cargo", number=f"EXP-2026-{event}")
            doc = issue_document(
                session, settings, case_data(case, "cargo"), "cargo", event, NOW,
                signer=app.signer, templates=app.document_templates,
            )  # fmt: skip
        return (settings.data_dir / doc.path).read_bytes()

    before = issue("000001")
    assert validate(before, old).valid
    new = create_demo_pki(tmp_path / "rotated", org="Institución renovada")
    shutil.copyfile(new.signer_p12, keys / "signer.p12")
    (keys / "signer-password.txt").write_text(new.signer_password + "\n", encoding="utf-8")

    rotated = app.signer
    assert rotated is not first and rotated.subject == "Institución renovada — Mesa de Partes"
    after = issue("000002")
    status = validate(after, new)
    assert status.bottom_line and status.intact and status.valid and status.trusted
    new_cert = new.signer.asn1_cert()
    assert status.signing_cert.dump() == new_cert.dump()
    assert _ess_cert_hash(after) == hashlib.sha256(new_cert.dump()).digest()
    assert _ess_cert_hash(before) == hashlib.sha256(old.signer.asn1_cert().dump()).digest()
    assert not validate(after, old).trusted  # the old CA does not vouch for the new key
    assert app.signer is rotated


def test_signer_without_keys_explains_what_to_do(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="mailflow keys demo"):
        signer_from_settings(settings, env={})


def test_the_cargo_states_the_receipt_rule_the_calendar_applied() -> None:
    """The cargo's closing quotes the rule in force (no cutoff by default, Ley 31465), never
    a fixed office-hours sentence (issue 12)."""
    from mailflow.clock.dias_habiles import Calendario
    from mailflow.documents.templates import CaseData, build_context, fill

    received = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)  # Friday 18:30 in Lima
    rule = Calendario().receipt_rule(received)
    data = CaseData(
        case_id=1, expediente="EXP-2026-000001", tramite="apelacion",
        tramite_nombre="Recurso de Apelación", campos={}, received_at=received,
        legal_receipt_day=received.date(), regla_recepcion=rule,
    )  # fmt: skip
    context = build_context(
        data, institution=Settings().institution.model_dump(), number=None,
        issued_at=received, timezone="America/Lima",
    )  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    cargo = fill(load_templates(root / "templates" / "documents")["cargo"], context)
    closing = " ".join(cargo.closing)
    assert "sin hora de corte" in closing and "17:00" not in closing
