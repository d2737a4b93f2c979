"""Signing certificate expiry and trust roots, as reported by `mailflow health`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from mailflow.config import Settings
from mailflow.errors import MailflowError

EXPIRY_WARNING = dt.timedelta(days=30)  # warn this long before the signing certificate expires


def signing_status(
    settings: Settings, now: dt.datetime, env: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """({"loaded", "subject", "not_after", "days_left"}, problems, warnings) for the signing key.

    A problem when the key cannot be loaded or has expired (documents cannot be issued); a
    warning when it expires within EXPIRY_WARNING (30 days).
    """
    from mailflow.documents.signing_key import inspect_pkcs12

    try:
        key = inspect_pkcs12(settings, env)
    except MailflowError as exc:
        return {"loaded": False}, [f"firma: {exc}"], []
    not_after = key.not_after
    left = not_after - now
    report = {
        "loaded": True,
        "file": str(key.path),
        "subject": key.subject,
        "not_after": not_after.isoformat(),
        "days_left": left.days,
    }
    if left <= dt.timedelta(0):
        problem = f"el certificado de firma venció el {not_after:%Y-%m-%d}; renuévelo"
        return report, [problem], []
    if left <= EXPIRY_WARNING:
        warning = (
            f"el certificado de firma vence el {not_after:%Y-%m-%d} ({left.days} días); "
            "renuévelo y reemplace signing.pkcs12"
        )
        return report, [], [warning]
    return report, [], []


def trust_root_status(settings: Settings) -> tuple[dict[str, Any], list[str], list[str]]:
    """({"files", "certificates"}, problems, warnings): whether the trust roots load, how many.

    An unreadable file is a problem; no roots at all is a warning (applicants' signatures
    are then never validated, every signed request goes to staff).
    """
    from mailflow.intake.trust_roots import load_trust_roots

    files = [str(p) for p in settings.signatures.trust_roots]
    try:
        roots = load_trust_roots(list(settings.signatures.trust_roots))
    except MailflowError as exc:
        return {"files": files, "certificates": 0}, [f"raíces de confianza: {exc}"], []
    report = {"files": files, "certificates": len(roots)}
    if not roots:
        warning = (
            "no hay raíces de confianza cargadas (signatures.trust_roots o "
            "MAILFLOW_TRUST_ROOTS): ninguna firma digital de los solicitantes se validará"
        )
        return report, [], [warning]
    return report, [], []
