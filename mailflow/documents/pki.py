"""Local test PKI: a demo CA, the office's signing certificate and applicant-like certificates."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

DEFAULT_ORG = "Comisión Especial para los Refugiados"
_CA_YEARS = 20
_LEAF_YEARS = 5


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key, both stored as PEM files."""

    name: str
    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def asn1_cert(self) -> asn1_x509.Certificate:
        """The certificate as an asn1crypto object (what pyhanko expects)."""
        return asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class DemoPki:
    """The files of `mailflow keys demo`: a CA and the office's signing certificate."""

    directory: Path
    ca: Identity
    signer: Identity
    ca_pem: Path
    ca_key_pem: Path
    signer_p12: Path
    signer_pem: Path
    signer_password: str


def create_demo_pki(
    directory: Path, *, org: str = DEFAULT_ORG, now: datetime | None = None
) -> DemoPki:
    """Create (or reuse) `ca.pem`, `ca-key.pem`, `signer.p12`, `signer.pem` under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_existed = (directory / "ca.pem").exists() and (directory / "ca-key.pem").exists()
    ca = create_ca(directory, f"{org} — CA de prueba", org=org, stem="ca", now=now)
    p12_path = directory / "signer.p12"
    password_path = directory / "signer-password.txt"
    signer_files = [directory / "signer.pem", directory / "signer-key.pem", p12_path, password_path]
    if ca_existed and all(path.exists() for path in signer_files):
        signer = _load_identity(f"{org} — Mesa de Partes", directory, "signer")
        password = password_path.read_text(encoding="utf-8").strip()
    else:
        signer = issue_person_certificate(
            ca, f"{org} — Mesa de Partes", directory, stem="signer", org=org, now=now, reuse=False
        )
        password = secrets.token_urlsafe(12)
        _write_private(password_path, (password + "\n").encode())
        p12 = pkcs12.serialize_key_and_certificates(
            b"signer",
            signer.key,
            signer.cert,
            [ca.cert],
            serialization.BestAvailableEncryption(password.encode()),
        )
        _write_private(p12_path, p12)
    return DemoPki(
        directory=directory,
        ca=ca,
        signer=signer,
        ca_pem=ca.cert_path,
        ca_key_pem=ca.key_path,
        signer_p12=p12_path,
        signer_pem=signer.cert_path,
        signer_password=password,
    )


def create_ca(
    directory: Path,
    name: str,
    *,
    org: str = DEFAULT_ORG,
    stem: str | None = None,
    now: datetime | None = None,
) -> Identity:
    """Create (or reuse) a self-signed CA as `<stem>.pem` and `<stem>-key.pem`."""
    stem = stem or _slug(name)
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / f"{stem}.pem").exists() and (directory / f"{stem}-key.pem").exists():
        return _load_identity(name, directory, stem)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name, org)
    start = _now(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(days=365))
        .not_valid_after(start + timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _store(name, directory, stem, cert, key)


def issue_person_certificate(
    ca: Identity,
    name: str,
    directory: Path,
    *,
    stem: str | None = None,
    org: str | None = None,
    non_repudiation: bool = True,
    now: datetime | None = None,
    reuse: bool = True,
    serial_number: str | None = None,
) -> Identity:
    """Create (or reuse) a signing certificate for `name` issued by `ca`, as `<stem>.pem`;
    `serial_number` sets the subject's serialNumber (the holder's document number, as national
    certification authorities do, e.g. "PAS154879632")."""
    stem = stem or _slug(name)
    directory.mkdir(parents=True, exist_ok=True)
    exists = (directory / f"{stem}.pem").exists() and (directory / f"{stem}-key.pem").exists()
    if reuse and exists:
        return _load_identity(name, directory, stem)
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now(now)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name, org, serial_number))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(days=365))
        .not_valid_after(start + timedelta(days=365 * _LEAF_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(non_repudiation=non_repudiation), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return _store(name, directory, stem, cert, key)


def make_signer(identity: Identity, chain: Sequence[Identity] = ()) -> SimpleSigner:
    """A pyhanko signer for `identity`, embedding the certificates of `chain`."""
    key_der = identity.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    registry = SimpleCertificateStore.from_certs([other.asn1_cert() for other in chain])
    return SimpleSigner(
        signing_cert=identity.asn1_cert(),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=registry,
    )


def _key_usage(*, cert_sign: bool = False, non_repudiation: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation and not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str, org: str | None, serial_number: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "PE")]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org[:64]))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))
    if serial_number:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number[:64]))
    return x509.Name(attributes)


def _store(
    name: str, directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Identity:
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}-key.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Identity(name, cert_path, key_path, cert, key)


def _load_identity(name: str, directory: Path, stem: str) -> Identity:
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}-key.pem"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: se esperaba una clave EC")
    return Identity(name, cert_path, key_path, cert, key)


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "cert"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)
