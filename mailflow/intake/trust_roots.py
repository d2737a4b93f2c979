"""Trusted CA certificates for checking signed PDFs, loaded from PEM or DER files.

Apart from mailflow.intake.signatures (whose validation stack, pyhanko's, takes ~0.6 s to
import): the service loads its trust roots at start-up, and reads signatures only when a
message carries a signed PDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asn1crypto.x509 import Certificate
from pyhanko.keys import load_certs_from_pemder_data

from mailflow.errors import ConfigError


def load_trust_roots(paths: Sequence[Path]) -> list[Certificate]:
    """The certificates in the files `paths`, in order: PEM (one or several per file) or DER.

    Raises ConfigError (in Spanish, naming the file) for a file that cannot be read, is not a
    certificate, or holds none."""
    roots: list[Certificate] = []
    for path in paths:
        try:
            certs = list(load_certs_from_pemder_data(Path(path).read_bytes()))
            for cert in certs:
                _ = cert.native  # asn1crypto parses lazily: force it so bad files fail here
        except OSError as exc:
            raise ConfigError(
                f"{path}: no se puede leer el certificado raíz ({exc.strerror})"
            ) from exc
        except Exception as exc:
            raise ConfigError(f"{path}: no es un certificado PEM o DER válido ({exc})") from exc
        if not certs:
            raise ConfigError(f"{path}: el archivo no contiene ningún certificado")
        roots.extend(certs)
    return roots
