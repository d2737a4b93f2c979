"""The institution's signature on issued documents: PAdES with a visible stamp (pyhanko)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_signer import PdfSigner
from pyhanko.stamp import TextStampStyle

from mailflow.config import Settings
from mailflow.documents.signing_key import resolve_pkcs12
from mailflow.errors import ConfigError

FIELD_NAME = "FirmaInstitucional"
_RESERVED = 16384  # bytes kept for the CMS blob: skips pyhanko's trial signature
_STAMP = TextStampStyle(
    stamp_text="Firmado digitalmente por:\n%(firmante)s\nFecha: %(ts)s",
    timestamp_format="%d/%m/%Y %H:%M:%S %Z",
    text_box_style=TextBoxStyle(font_size=7, leading=9),
    border_width=1,
    background=None,
)


class _EncodedAttribute(CMSAttributeProvider):
    """A signed attribute whose DER was built once: each signature parses a fresh copy.

    A parsed asn1crypto value dumps its cached bytes; one assembled from Python values is
    re-encoded level by level, which made the signing-certificate-v2 attribute (certificate
    hash, issuer name, serial) cost tens of milliseconds per signature.
    """

    def __init__(self, attribute: cms.CMSAttribute) -> None:
        self.attribute_type = attribute["type"].native
        self._der = attribute.dump()

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self._der)


class _PadesSignedAttributes(SignedAttributeProviderSpec):
    """The signed attributes pyhanko's CAdES spec gives a PAdES signature (no timestamper, no
    CAdES extras, no signing-time: PAdES forbids it) with signing-certificate-v2 encoded once
    for the signer's certificate. pyhanko adds content-type and message-digest itself."""

    def __init__(self, signing_cert: x509.Certificate) -> None:
        value = as_signing_certificate_v2(signing_cert)
        self._cert_attribute = _EncodedAttribute(
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]})
        )

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterator[CMSAttributeProvider]:
        yield self._cert_attribute


@dataclass(frozen=True)
class SignatureField:
    """The visible signature's place: 0-based page and (x1, y1, x2, y2) in PDF points."""

    page: int
    box: tuple[int, int, int, int]


class DocumentSigner:
    """The institution's key, loaded once, signing any number of PDFs.

    The signer's certificate-dependent signed attributes are encoded once here, so a new key
    or certificate needs a new DocumentSigner (see SignerSource).
    """

    def __init__(self, signer: signers.SimpleSigner, *, reason: str, location: str) -> None:
        self._signer = signer
        if signer.signing_cert is not None:
            signer.signed_attr_prov_spec = _PadesSignedAttributes(signer.signing_cert)
        # The stamp's simple font has no em dash: print it as a hyphen.
        self._stamp_name = self.subject.replace("—", "-").replace("–", "-")
        self.reason = reason
        self.location = location

    @classmethod
    def from_pkcs12(
        cls, path: Path, password: str | None, *, reason: str = "", location: str = ""
    ) -> DocumentSigner:
        """Load a PKCS#12 file (key, certificate and its chain); a clear error if it fails."""
        if not path.exists():
            raise ConfigError(f"signing.pkcs12: el archivo {path} no existe")
        try:
            loaded = signers.SimpleSigner.load_pkcs12(
                str(path), passphrase=password.encode() if password else None
            )
        except (ValueError, OSError) as exc:
            loaded = None
            detail = str(exc)
        else:
            detail = ""
        if loaded is None:
            raise ConfigError(
                f"signing.pkcs12: no se pudo abrir {path} (¿contraseña correcta?) {detail}".strip()
            )
        return cls(loaded, reason=reason, location=location)

    @property
    def subject(self) -> str:
        """The signer certificate's common name."""
        cert = self._signer.signing_cert
        return str(cert.subject.native.get("common_name", "")) if cert else ""

    def _pdf_signer(self, where: SignatureField) -> PdfSigner:
        meta = signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=self.reason or None,
            location=self.location or None,
        )
        spec = fields.SigFieldSpec(FIELD_NAME, on_page=where.page, box=where.box)
        return PdfSigner(meta, signer=self._signer, stamp_style=_STAMP, new_field_spec=spec)

    async def async_sign(self, pdf: bytes, where: SignatureField) -> bytes:
        """Sign inside a running event loop (pyhanko's async API)."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        out = await self._pdf_signer(where).async_sign_pdf(
            writer,
            output=io.BytesIO(),
            bytes_reserved=_RESERVED,
            appearance_text_params={"firmante": self._stamp_name},
        )
        return bytes(out.getvalue())

    def sign(self, pdf: bytes, where: SignatureField) -> bytes:
        """Sign from synchronous code; also safe when called from inside an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.async_sign(pdf, where))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.async_sign(pdf, where)).result()


def signer_from_settings(
    settings: Settings, env: Mapping[str, str] | None = None
) -> DocumentSigner:
    """The signer named by `signing.pkcs12`, password from the env var `signing.password_env`.

    Without `signing.pkcs12`, the demo files of `mailflow keys demo` (<data_dir>/keys) are used,
    and their password file stands in for the environment variable.
    """
    path, password = resolve_pkcs12(settings, env)
    institution = settings.institution
    return DocumentSigner.from_pkcs12(
        path,
        password,
        reason=f"Documento emitido por la {institution.name}",
        location=institution.city,
    )


class SignerSource:
    """The signer named by the settings, loaded once and reloaded when the key is rotated.

    `current()` checks the PKCS#12 file (path, size, modification time, inode) and the password
    on every call, a stat and no parsing; when any changed, the new key and certificate are
    loaded (with their signed attributes encoded anew) instead of signing with the stale ones.
    A rotated file that cannot be opened raises ConfigError (nothing is signed) and is retried
    on the next call.
    """

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._env = env
        self._lock = threading.Lock()
        self._loaded: tuple[object, DocumentSigner] | None = None

    def current(self) -> DocumentSigner:
        """The signer for the key file as it is now; ConfigError as signer_from_settings."""
        path, password = resolve_pkcs12(self._settings, self._env)
        stat = path.stat()
        version = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, password)
        with self._lock:
            if self._loaded is None or self._loaded[0] != version:
                self._loaded = (version, signer_from_settings(self._settings, self._env))
            return self._loaded[1]
