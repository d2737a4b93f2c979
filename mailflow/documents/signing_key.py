"""Which PKCS#12 signs the institution's documents, and a light check that it opens.

Kept apart from mailflow.documents.signing (pyhanko, slow to import) so that start-up checks and
`mailflow health` can check the key with `cryptography` alone.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailflow.config import Settings
from mailflow.errors import ConfigError

DEMO_PASSWORD_FILE = "signer-password.txt"


def resolve_pkcs12(settings: Settings, env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """(path, password) of the signing key, or ConfigError saying what is missing and how to fix it.

    The key is `signing.pkcs12` (or MAILFLOW_SIGNING_PKCS12), its password the env var named by
    `signing.password_env`. Without a configured key, the demo files of `mailflow keys demo`
    under <data_dir>/keys are used, their password file standing in for the variable.
    """
    env = os.environ if env is None else env
    path = settings.signing.pkcs12
    password = env.get(settings.signing.password_env)
    if path is None:
        path = settings.data_dir / "keys" / "signer.p12"
        if not path.exists():
            raise ConfigError(
                "signing.pkcs12: no hay certificado de firma; indique el archivo PKCS#12 de la "
                "institución en signing.pkcs12 o en la variable MAILFLOW_SIGNING_PKCS12 (para "
                f"pruebas: `mailflow keys demo`, que lo crea en {path.parent})"
            )
        demo_password = path.with_name(DEMO_PASSWORD_FILE)
        if password is None and demo_password.exists():
            password = demo_password.read_text(encoding="utf-8").strip()
    if not path.exists():
        raise ConfigError(f"signing.pkcs12: el archivo {path} no existe")
    if password is None:
        raise ConfigError(
            f"signing: falta la contraseña del certificado {path}; defínala en la variable de "
            f"entorno {settings.signing.password_env}"
        )
    return path, password


@dataclass(frozen=True)
class KeyInfo:
    """What `mailflow health` shows about the signing certificate."""

    path: Path
    subject: str
    not_after: dt.datetime  # aware UTC


def inspect_pkcs12(settings: Settings, env: Mapping[str, str] | None = None) -> KeyInfo:
    """Open the signing PKCS#12 (key and certificate must both be there) with `cryptography`.

    Raises ConfigError as resolve_pkcs12 does, or when the file cannot be opened (wrong
    password, not a PKCS#12, no private key or certificate in it).
    """
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    path, password = resolve_pkcs12(settings, env)
    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(path.read_bytes(), password.encode())
    except (ValueError, OSError) as exc:
        raise ConfigError(
            f"signing.pkcs12: no se pudo abrir {path} (¿contraseña correcta?) {exc}".strip()
        ) from exc
    if key is None or cert is None:
        raise ConfigError(f"signing.pkcs12: {path} no contiene la clave y el certificado de firma")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else cert.subject.rfc4514_string()
    return KeyInfo(path, subject, cert.not_valid_after_utc)
