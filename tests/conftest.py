"""Shared pytest fixtures; fixture families live in their own modules listed here."""

pytest_plugins = [
    "tests.fixtures_db",
    "tests.dovecot",  # private Dovecot IMAP server: dovecot, imap_account
    "tests.smtp_sink",  # aiosmtpd capture server: smtp_sink
    "tests.fixtures_pki",  # PKI + signed PDFs: test_pki, signed_pdf_factory (mailflow.pki)
]
