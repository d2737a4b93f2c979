"""Session-scoped PKI fixtures: trusted and untrusted CAs, applicant certificates, signed PDFs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto.x509 import Certificate

from mailflow.documents.pki import (
    DemoPki,
    Identity,
    create_ca,
    create_demo_pki,
    issue_person_certificate,
)
from tests.support.pdfs import make_pdf, sign_pdf


@dataclass(frozen=True)
class PkiSet:
    """The certificates tests sign with; `trust_roots` trusts the office and applicant CAs."""

    directory: Path
    office: DemoPki
    applicant_ca: Identity
    applicant: Identity
    applicant_digital_signature_only: Identity
    unknown_ca: Identity
    stranger: Identity

    @property
    def trust_root_paths(self) -> list[Path]:
        return [self.office.ca_pem, self.applicant_ca.cert_path]

    @property
    def trust_roots(self) -> list[Certificate]:
        return [self.office.ca.asn1_cert(), self.applicant_ca.asn1_cert()]

    def chain_for(self, identity: Identity) -> list[Identity]:
        """The CA that issued `identity`, to embed in its signatures."""
        for ca in (self.office.ca, self.applicant_ca, self.unknown_ca):
            if identity.cert.issuer == ca.cert.subject:
                return [ca]
        return []


SignedPdfFactory = Callable[..., bytes]


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiSet:
    directory = tmp_path_factory.mktemp("pki")
    applicant_ca = create_ca(directory, "CA de Identidad Digital de Prueba (tipo RENIEC)")
    unknown_ca = create_ca(directory, "Autoridad Desconocida")
    return PkiSet(
        directory=directory,
        office=create_demo_pki(directory / "oficina"),
        applicant_ca=applicant_ca,
        applicant=issue_person_certificate(applicant_ca, "Juan Pérez Quispe", directory),
        applicant_digital_signature_only=issue_person_certificate(
            applicant_ca, "Ana Torres Díaz", directory, non_repudiation=False
        ),
        unknown_ca=unknown_ca,
        stranger=issue_person_certificate(unknown_ca, "Pedro Desconocido", directory),
    )


@pytest.fixture(scope="session")
def signed_pdf_factory(test_pki: PkiSet) -> SignedPdfFactory:
    """`factory(lines=..., signer=identity, form_fields=...)` → signed PDF bytes."""

    def factory(
        lines: Sequence[str] = ("Recurso de Reconsideración", "Nombre: Juan Pérez Quispe"),
        *,
        signer: Identity | None = None,
        form_fields: Mapping[str, str] | None = None,
    ) -> bytes:
        identity = signer or test_pki.applicant
        return sign_pdf(make_pdf(lines, form_fields), identity, test_pki.chain_for(identity))

    return factory
