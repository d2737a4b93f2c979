"""Offline verification of the digital signatures in attached PDFs (pyhanko)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from asn1crypto.x509 import Certificate
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from mailflow.vocabulary import SignatureStatus

# pyhanko logs a full traceback for every ordinary validation failure (tampered file, unknown CA).
for _name in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

VALID, UNTRUSTED, INVALID, UNSIGNED, ABSENT = (
    SignatureStatus.VALID,
    SignatureStatus.UNTRUSTED,
    SignatureStatus.INVALID,
    SignatureStatus.UNSIGNED,
    SignatureStatus.ABSENT,
)
_SEVERITY = {INVALID: 0, UNTRUSTED: 1, VALID: 2}
_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"})
_MODIFIED = "el documento fue modificado después de firmarse"
_SIGNATURE_MARKERS = re.compile(
    rb"/ByteRange\s*\[|/Type\s*/Sig\b|/SubFilter\s*/(?:adbe\.pkcs7|ETSI\.)|/Contents\s*<[0-9a-fA-F]{64}"
)
T = TypeVar("T")


@dataclass(frozen=True)
class Signer:
    """Who signed: the certificate's subject common name and serialNumber (document number)."""

    common_name: str | None
    serial_number: str | None
    status: SignatureStatus  # valid | untrusted | invalid


@dataclass(frozen=True)
class SignatureReport:
    """What the signatures of one attachment (or a set of attachments) amount to."""

    status: SignatureStatus
    signer: str | None
    reason: str
    details: tuple[str, ...] = ()
    filename: str | None = None
    signed_at: datetime | None = None
    signers: tuple[Signer, ...] = ()


def verify_pdf_signatures(
    data: bytes, *, trust_roots: Sequence[Certificate], filename: str | None = None
) -> SignatureReport:
    """Verify every signature in one PDF; safe to call from inside a running event loop."""
    return _run(averify_pdf_signatures(data, trust_roots=trust_roots, filename=filename))


def verify_attachments(
    pdfs: Sequence[tuple[str, bytes]], trust_roots: Sequence[Certificate]
) -> SignatureReport:
    """One report for all attached PDFs: the worst signed one, else unsigned, else absent."""
    return _run(averify_attachments(pdfs, trust_roots))


def verify_each(
    pdfs: Sequence[tuple[str, bytes]], trust_roots: Sequence[Certificate]
) -> list[SignatureReport]:
    """One report per attached PDF (name, bytes), in order; never raises."""
    return _run(_averify_each(pdfs, trust_roots))


async def _averify_each(
    pdfs: Sequence[tuple[str, bytes]], trust_roots: Sequence[Certificate]
) -> list[SignatureReport]:
    return [
        await averify_pdf_signatures(data, trust_roots=trust_roots, filename=name)
        for name, data in pdfs
    ]


async def averify_attachments(
    pdfs: Sequence[tuple[str, bytes]], trust_roots: Sequence[Certificate]
) -> SignatureReport:
    """Async variant of `verify_attachments`."""
    if not pdfs:
        return SignatureReport(ABSENT, None, "no se adjuntó ningún documento PDF")
    reports = [
        await averify_pdf_signatures(data, trust_roots=trust_roots, filename=name)
        for name, data in pdfs
    ]
    signed = [report for report in reports if report.status in _SEVERITY]
    if not signed:
        names = ", ".join(name for name, _ in pdfs)
        return SignatureReport(UNSIGNED, None, f"ningún PDF adjunto está firmado ({names})")
    worst = min(signed, key=lambda report: _SEVERITY[report.status])
    others = tuple(f"{r.filename}: {r.status}" for r in reports if r is not worst)
    return SignatureReport(
        worst.status,
        worst.signer,
        worst.reason,
        worst.details + others,
        worst.filename,
        worst.signed_at,
    )


async def averify_pdf_signatures(
    data: bytes, *, trust_roots: Sequence[Certificate], filename: str | None = None
) -> SignatureReport:
    """Async variant of `verify_pdf_signatures`; never raises."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = list(reader.embedded_regular_signatures)
    except Exception as exc:  # pyhanko cannot parse it: judge by the raw markers
        if _SIGNATURE_MARKERS.search(data):
            return SignatureReport(
                INVALID,
                None,
                "la firma está dañada: el PDF no se puede leer",
                (_describe(exc),),
                filename,
            )
        return SignatureReport(
            UNSIGNED,
            None,
            "el PDF no tiene firma digital (no se pudo leer)",
            (_describe(exc),),
            filename,
        )
    if not embedded:
        return SignatureReport(UNSIGNED, None, "el PDF no tiene firma digital", (), filename)
    trailing = _trailing_data(reader, data)
    reports = [await _verify_one(sig, trust_roots, trailing, filename) for sig in embedded]
    worst = min(reports, key=lambda report: _SEVERITY[report.status])
    return replace(worst, signers=tuple(s for r in reports for s in r.signers))


async def _verify_one(
    sig: EmbeddedPdfSignature,
    trust_roots: Sequence[Certificate],
    trailing: int,
    filename: str | None,
) -> SignatureReport:
    field = f"campo de firma {sig.field_name}"
    try:
        context = ValidationContext(trust_roots=list(trust_roots), allow_fetching=False)
        status = await async_validate_pdf_signature(sig, context, key_usage_settings=_KEY_USAGE)
    except Exception as exc:
        return SignatureReport(
            INVALID,
            None,
            "la firma está dañada o no se puede verificar",
            (field, _describe(exc)),
            filename,
        )
    signer, serial = _subject(status)
    signed_at = status.signer_reported_dt
    if status.timestamp_validity is not None:
        signed_at = status.timestamp_validity.timestamp
    details = (field, *_findings(status))
    status_name, reason = _judge(status, trailing, signer)
    if trailing:
        details += (f"{trailing} bytes agregados después del final del documento",)
    signers = (Signer(signer, serial, status_name),)
    return SignatureReport(status_name, signer, reason, details, filename, signed_at, signers)


def _judge(
    status: PdfSignatureStatus, trailing: int, signer: str | None
) -> tuple[SignatureStatus, str]:
    if not (status.intact and status.valid):
        return INVALID, "la firma no corresponde al contenido: el documento fue alterado"
    if trailing or status.coverage is None:
        return INVALID, _MODIFIED
    if status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return INVALID, _MODIFIED
    if not (status.docmdp_ok or status.modification_level is None) or not status.seed_value_ok:
        return INVALID, _MODIFIED
    if status.revoked:
        return INVALID, f"el certificado de {signer or 'el firmante'} fue revocado"
    if not status.bottom_line:
        return UNTRUSTED, (
            f"la firma está intacta, pero el certificado de {signer or 'el firmante'} "
            "no proviene de una autoridad de confianza"
        )
    return VALID, f"firma válida de {signer or 'firmante sin nombre'}"


def _findings(status: PdfSignatureStatus) -> tuple[str, ...]:
    coverage = status.coverage.name if status.coverage else "desconocida"
    level = status.modification_level
    found = [f"cobertura: {coverage}", f"modificaciones: {level.name if level else 'desconocidas'}"]
    if status.trust_problem_indic is not None:
        found.append(f"confianza: {status.trust_problem_indic.standard_name}")
    if status.diff_result is not None and not hasattr(status.diff_result, "modification_level"):
        found.append(f"cambio no permitido: {_first_line(status.diff_result)}")
    return tuple(found)


def _trailing_data(reader: PdfFileReader, data: bytes) -> int:
    """Count non-blank bytes after the %%EOF that ends the file's last revision."""
    try:
        xrefs = reader.xrefs
        end = xrefs.get_xref_container_info(xrefs.total_revisions - 1).end_location
    except Exception:
        return 0
    eof = data.find(b"%%EOF", end)
    if eof < 0:
        return 0
    return len(data[eof + 5 :].strip(b" \t\r\n\f\0"))


def _subject(status: PdfSignatureStatus) -> tuple[str | None, str | None]:
    """The signing certificate's subject common name and serialNumber (either may be None)."""
    try:
        names = status.signing_cert.subject.native
    except Exception:
        return None, None
    if not isinstance(names, dict):
        return None, None
    name, serial = names.get("common_name"), names.get("serial_number")
    return (str(name) if name else None), (str(serial) if serial else None)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(value: object) -> str:
    lines = str(value).splitlines()
    return lines[0][:200] if lines else ""


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion, in a worker thread when an event loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailflow-firma") as pool:
        return pool.submit(asyncio.run, coro).result()
