"""`mailflow keys demo`: a local test CA and the institution's signing certificate."""

from __future__ import annotations

import datetime as dt

from mailflow.config import Settings
from mailflow.documents.pki import create_demo_pki


def keys_demo(settings: Settings, now: dt.datetime | None = None) -> str:
    """Create (or reuse) the demo keys under <data_dir>/keys/ and say how to use them."""
    directory = settings.data_dir / "keys"
    existed = (directory / "signer.p12").exists()
    pki = create_demo_pki(directory, org=settings.institution.name, now=now)
    verb = "ya existían" if existed else "creados"
    password_file = pki.signer_p12.with_name("signer-password.txt")
    return "\n".join(
        [
            f"Certificados de prueba {verb} en {directory}:",
            f"  CA de prueba (raíz de confianza):  {pki.ca_pem}",
            f"  Certificado de firma (PKCS#12):    {pki.signer_p12}",
            f"  Contraseña del PKCS#12:            {password_file}",
            "mailflow los usa mientras signing.pkcs12 (config.yaml) y MAILFLOW_SIGNING_PKCS12 "
            "estén vacíos, con la contraseña del archivo de arriba.",
            "En producción: signing.pkcs12 (o MAILFLOW_SIGNING_PKCS12) con el certificado de la "
            f"institución y su contraseña en la variable {settings.signing.password_env}.",
            "Son solo para pruebas y demostraciones: no los use en producción.",
        ]
    )
