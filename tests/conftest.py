"""Shared pytest fixtures; fixture families live in their own modules listed here."""

pytest_plugins = [
    "tests.support.markers",  # the integration marker
    "tests.support.fixtures_db",
    "tests.support.dovecot",  # private Dovecot IMAP server: dovecot, imap_account
    "tests.support.smtp_sink",  # aiosmtpd capture server: smtp_sink
    "tests.support.fixtures_pki",  # PKI + signed PDFs: test_pki, signed_pdf_factory (mailflow.documents.pki)
]
