"""Shared pytest fixtures; fixture families live in their own modules listed here."""

pytest_plugins = [
    "tests.fixtures_db",
    "tests.fixtures_pki",  # PKI + signed PDFs: test_pki, signed_pdf_factory (mailflow.pki)
]
