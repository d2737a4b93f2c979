"""Signature verification of attached PDFs: every status, tampering, several PDFs, event loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import pem

from mailflow.documents.pki import create_demo_pki
from mailflow.errors import ConfigError
from mailflow.intake.signatures import (
    averify_attachments,
    averify_pdf_signatures,
    verify_attachments,
    verify_pdf_signatures,
)
from mailflow.intake.trust_roots import load_trust_roots
from tests.support.fixtures_pki import PkiSet, SignedPdfFactory
from tests.support.pdfs import (
    encrypted_pdf,
    looping_pdf,
    make_pdf,
    nested_arrays_pdf,
    sign_pdf,
    tamper_append_garbage,
    tamper_incremental_update,
    tamper_signed_range,
)

MODIFIED = "el documento fue modificado después de firmarse"


def encrypted_pdf_factory() -> bytes:
    return encrypted_pdf(["Confidencial"])


def test_valid_signature_names_the_signer(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    report = verify_pdf_signatures(
        signed_pdf_factory(), trust_roots=test_pki.trust_roots, filename="recurso.pdf"
    )
    assert report.status == "valid"
    assert report.signer == "Juan Pérez Quispe"
    assert report.filename == "recurso.pdf"
    assert report.reason == "firma válida de Juan Pérez Quispe"
    assert report.signed_at is not None and report.signed_at.tzinfo is not None


def test_digital_signature_key_usage_alone_is_accepted(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdf = signed_pdf_factory(signer=test_pki.applicant_digital_signature_only)
    report = verify_pdf_signatures(pdf, trust_roots=test_pki.trust_roots)
    assert (report.status, report.signer) == ("valid", "Ana Torres Díaz")


def test_office_signer_from_demo_pki_is_valid(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdf = signed_pdf_factory(signer=test_pki.office.signer)
    report = verify_pdf_signatures(pdf, trust_roots=test_pki.trust_roots)
    assert report.status == "valid"


def test_unknown_ca_is_untrusted_but_intact(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    report = verify_pdf_signatures(
        signed_pdf_factory(signer=test_pki.stranger), trust_roots=test_pki.trust_roots
    )
    assert report.status == "untrusted"
    assert report.signer == "Pedro Desconocido"
    assert "no proviene de una autoridad de confianza" in report.reason


def test_no_trust_roots_means_untrusted(signed_pdf_factory: SignedPdfFactory) -> None:
    assert verify_pdf_signatures(signed_pdf_factory(), trust_roots=[]).status == "untrusted"


def test_bytes_changed_inside_signed_range_are_invalid(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    tampered = tamper_signed_range(signed_pdf_factory())
    report = verify_pdf_signatures(tampered, trust_roots=test_pki.trust_roots)
    assert report.status == "invalid"
    assert "el documento fue alterado" in report.reason


def test_incremental_update_changing_the_page_is_invalid(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    tampered = tamper_incremental_update(signed_pdf_factory())
    report = verify_pdf_signatures(tampered, trust_roots=test_pki.trust_roots)
    assert (report.status, report.reason) == ("invalid", MODIFIED)
    assert report.signer == "Juan Pérez Quispe"


def test_garbage_appended_after_eof_is_invalid(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    tampered = tamper_append_garbage(signed_pdf_factory())
    report = verify_pdf_signatures(tampered, trust_roots=test_pki.trust_roots)
    assert (report.status, report.reason) == ("invalid", MODIFIED)
    assert any("bytes agregados" in detail for detail in report.details)


def test_trailing_newlines_after_eof_are_harmless(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    padded = signed_pdf_factory() + b"\r\n\n"
    assert verify_pdf_signatures(padded, trust_roots=test_pki.trust_roots).status == "valid"


def test_second_signature_is_an_allowed_update(test_pki: PkiSet) -> None:
    first = sign_pdf(make_pdf(["Dos firmantes"]), test_pki.applicant, [test_pki.applicant_ca])
    both = sign_pdf(
        first,
        test_pki.applicant_digital_signature_only,
        [test_pki.applicant_ca],
        field_name="Firma2",
    )
    assert verify_pdf_signatures(both, trust_roots=test_pki.trust_roots).status == "valid"


def test_one_untrusted_signature_among_two_makes_the_pdf_untrusted(test_pki: PkiSet) -> None:
    first = sign_pdf(make_pdf(["Dos firmantes"]), test_pki.applicant, [test_pki.applicant_ca])
    both = sign_pdf(first, test_pki.stranger, [test_pki.unknown_ca], field_name="Firma2")
    report = verify_pdf_signatures(both, trust_roots=test_pki.trust_roots)
    assert (report.status, report.signer) == ("untrusted", "Pedro Desconocido")


def test_pdf_without_signature_is_unsigned(test_pki: PkiSet) -> None:
    report = verify_pdf_signatures(make_pdf(["Sin firma"]), trust_roots=test_pki.trust_roots)
    assert (report.status, report.signer) == ("unsigned", None)


def test_unparseable_file_with_signature_markers_is_invalid(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    signed = signed_pdf_factory()
    truncated = signed[: signed.rindex(b"/ByteRange") + 40]
    report = verify_pdf_signatures(truncated, trust_roots=test_pki.trust_roots)
    assert report.status == "invalid"
    assert report.details  # the parser's complaint is kept for staff


@pytest.mark.parametrize("data", [b"", b"hola, no soy un PDF", b"%PDF-1.7\n" + b"\xff" * 300])
def test_unparseable_file_without_markers_is_unsigned(test_pki: PkiSet, data: bytes) -> None:
    assert verify_pdf_signatures(data, trust_roots=test_pki.trust_roots).status == "unsigned"


def test_attachments_without_pdfs_are_absent(test_pki: PkiSet) -> None:
    assert verify_attachments([], test_pki.trust_roots).status == "absent"


def test_attachments_all_unsigned(test_pki: PkiSet) -> None:
    pdfs = [("a.pdf", make_pdf(["a"])), ("b.pdf", make_pdf(["b"]))]
    report = verify_attachments(pdfs, test_pki.trust_roots)
    assert report.status == "unsigned"
    assert "a.pdf" in report.reason and "b.pdf" in report.reason


def test_a_valid_pdf_does_not_hide_a_tampered_one(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    good = signed_pdf_factory()
    pdfs = [("bueno.pdf", good), ("malo.pdf", tamper_incremental_update(good))]
    for ordering in (pdfs, pdfs[::-1]):
        report = verify_attachments(ordering, test_pki.trust_roots)
        assert (report.status, report.filename) == ("invalid", "malo.pdf")
        assert "bueno.pdf: valid" in report.details


def test_signed_pdf_wins_over_unsigned_companion(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdfs = [("dni.pdf", make_pdf(["DNI"])), ("recurso.pdf", signed_pdf_factory())]
    report = verify_attachments(pdfs, test_pki.trust_roots)
    assert (report.status, report.filename) == ("valid", "recurso.pdf")


def test_untrusted_beats_valid_among_signed(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdfs = [
        ("uno.pdf", signed_pdf_factory()),
        ("dos.pdf", signed_pdf_factory(signer=test_pki.stranger)),
    ]
    report = verify_attachments(pdfs, test_pki.trust_roots)
    assert (report.status, report.filename) == ("untrusted", "dos.pdf")


def test_sync_api_works_inside_a_running_event_loop(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    pdf = signed_pdf_factory()

    async def inside_loop() -> tuple[str, str, str]:
        sync = verify_pdf_signatures(pdf, trust_roots=test_pki.trust_roots)
        native = await averify_pdf_signatures(pdf, trust_roots=test_pki.trust_roots)
        several = await averify_attachments([("r.pdf", pdf)], test_pki.trust_roots)
        return sync.status, native.status, several.status

    assert asyncio.run(inside_loop()) == ("valid", "valid", "valid")


def test_load_trust_roots_reads_pem_bundles_and_der(test_pki: PkiSet, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        test_pki.office.ca_pem.read_bytes() + test_pki.applicant_ca.cert_path.read_bytes()
    )
    der = tmp_path / "unknown.der"
    der.write_bytes(pem.unarmor(test_pki.unknown_ca.cert_path.read_bytes())[2])
    roots = load_trust_roots([bundle, der])
    names = [root.subject.native["common_name"] for root in roots]
    assert names == [
        test_pki.office.ca.name,
        "CA de Identidad Digital de Prueba (tipo RENIEC)",
        "Autoridad Desconocida",
    ]


def test_loaded_trust_roots_validate_signatures(
    test_pki: PkiSet, signed_pdf_factory: SignedPdfFactory
) -> None:
    roots = load_trust_roots(test_pki.trust_root_paths)
    assert verify_pdf_signatures(signed_pdf_factory(), trust_roots=roots).status == "valid"


def test_load_trust_roots_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-existe.pem"
    with pytest.raises(ConfigError, match=r"no-existe\.pem"):
        load_trust_roots([missing])


@pytest.mark.parametrize("content", [b"esto no es un certificado", b""])
def test_load_trust_roots_names_a_broken_file(tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "roto.pem"
    broken.write_bytes(content)
    with pytest.raises(ConfigError, match=r"roto\.pem"):
        load_trust_roots([broken])


def test_load_trust_roots_rejects_a_pem_without_certificates(test_pki: PkiSet) -> None:
    with pytest.raises(ConfigError, match="ningún certificado"):
        load_trust_roots([test_pki.office.ca_key_pem])


def test_demo_pki_is_idempotent(tmp_path: Path) -> None:
    first = create_demo_pki(tmp_path)
    second = create_demo_pki(tmp_path)
    assert first.ca.cert == second.ca.cert
    assert first.signer.cert == second.signer.cert
    assert first.signer_password == second.signer_password
    assert {p.name for p in tmp_path.iterdir()} >= {
        "ca.pem",
        "ca-key.pem",
        "signer.p12",
        "signer.pem",
    }
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("hostile", [looping_pdf, nested_arrays_pdf, encrypted_pdf_factory])
def test_hostile_pdfs_are_judged_without_raising(
    test_pki: PkiSet, hostile: Callable[[], bytes]
) -> None:
    report = verify_pdf_signatures(hostile(), trust_roots=test_pki.trust_roots)
    assert (report.status, report.signer) == ("unsigned", None)
