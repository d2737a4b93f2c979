"""Verification codes and the public constancia page: valid, revoked, expired, unknown, tampered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mailflow.config import Settings
from mailflow.documents.issuing import issue_document
from mailflow.documents.pki import create_demo_pki
from mailflow.documents.qr import ALPHABET, CODE_LENGTH, display_code, new_code, normalize_code
from mailflow.documents.signing import DocumentSigner
from mailflow.documents.verification import Constancia, NotValid, mask_name, verify_code
from mailflow.store.db import Database
from mailflow.store.models import Document
from mailflow.web import create_app
from tests.support.documents_helpers import NOW, add_case, case_data, make_settings


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> DocumentSigner:
    pki = create_demo_pki(tmp_path_factory.mktemp("keys"))
    return DocumentSigner.from_pkcs12(pki.signer_p12, pki.signer_password)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def client(settings: Settings, sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, sqlite_db)) as test_client:
        yield test_client


def _issue(
    settings: Settings, db: Database, signer: DocumentSigner, kind: str, **campos: str
) -> Document:
    with db.session() as session:
        case = add_case(session, _tramite(kind))
        return issue_document(
            session, settings, case_data(case, kind, **campos), kind, "emision", NOW, signer=signer
        )


def _tramite(kind: str) -> str:
    return {"cargo": "apelacion", "oficio": "prorroga_residencia"}.get(kind, kind)


def test_codes_are_short_unambiguous_and_random() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert not set("ILOU") & set(ALPHABET)
    fixed = new_code(lambda n: b"\xff" * n)
    assert fixed == "Z" * CODE_LENGTH


def test_typed_codes_are_normalised() -> None:
    assert display_code("7K3M9QX2RT") == "7K3M9-QX2RT"
    assert normalize_code(" 7k3m9-qx2rt ") == "7K3M9QX2RT"
    assert normalize_code("OIL00-00000") == "01100" + "00000"
    assert normalize_code("7K3M9QX2R") is None  # too short
    assert normalize_code("7K3M9QX2RU") is None  # U is not in the alphabet
    assert normalize_code("../../etc/passwd") is None


def test_names_are_masked() -> None:
    assert mask_name("María José Pérez Gómez") == "Ma*** Jo** Pé*** Gó***"
    assert mask_name("Li Wu") == "Li* Wu*"
    assert mask_name("") == "—"


def test_lookup_gives_the_constancia_with_validity_period(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner
) -> None:
    doc = _issue(settings, sqlite_db, signer, "autorizacion_viaje")
    with sqlite_db.session(readonly=True) as session:
        result = verify_code(
            session, settings.data_dir, display_code(doc.verification_code).lower()
        )
    assert isinstance(result, Constancia)
    assert (result.kind_name, result.number) == ("Autorización de Viaje", "EXP-2026-000123")
    assert (result.valid_from, result.valid_until) == (dt.date(2026, 12, 1), dt.date(2026, 12, 20))
    assert result.titular == "Ma*** Jo** Pé*** Gó***" and not result.revoked


def test_unknown_and_malformed_codes_are_not_valid(client: TestClient) -> None:
    for code in ["ZZZZZZZZZZ", "hola"]:
        page = client.get(f"/verificar/{code}")
        assert page.status_code == 404
        assert "Documento no válido" in page.text
    assert "No existe ningún documento" in client.get("/verificar/ZZZZZ-ZZZZZ").text
    assert "no tiene el formato" in client.get("/verificar/hola").text


def test_revoked_document_shows_revocado(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner, client: TestClient
) -> None:
    doc = _issue(settings, sqlite_db, signer, "oficio")
    with sqlite_db.session() as session:
        row = session.get(Document, doc.id)
        assert row is not None
        row.revoked_at = NOW + dt.timedelta(days=1)
        row.revoked_reason = "emitido por error"
    page = client.get(f"/verificar/{doc.verification_code}")
    assert page.status_code == 200
    assert "Documento revocado" in page.text and "emitido por error" in page.text
    assert "Documento válido" not in page.text
    assert "000001-2026-CEPR/MRE" in page.text


def test_expired_authorization_says_so(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner, client: TestClient
) -> None:
    doc = _issue(
        settings,
        sqlite_db,
        signer,
        "autorizacion_viaje",
        fecha_salida="2020-01-10",
        fecha_retorno="2020-02-10",
    )
    page = client.get(f"/verificar/{doc.verification_code}")
    assert page.status_code == 200
    assert "vigencia vencida" in page.text and "del 10/01/2020 al 10/02/2020" in page.text


def test_tampered_or_missing_stored_file_is_not_valid(
    settings: Settings, sqlite_db: Database, signer: DocumentSigner, client: TestClient
) -> None:
    doc = _issue(settings, sqlite_db, signer, "cargo")
    stored = settings.data_dir / doc.path
    assert client.get(f"/verificar/{doc.verification_code}").status_code == 200
    stored.write_bytes(stored.read_bytes() + b"\n% appended\n")
    page = client.get(f"/verificar/{doc.verification_code}")
    assert page.status_code == 404 and "no coincide con el emitido" in page.text
    stored.unlink()
    with sqlite_db.session(readonly=True) as session:
        assert isinstance(verify_code(session, settings.data_dir, doc.verification_code), NotValid)
