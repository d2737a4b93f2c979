"""Issued documents: wording, PDF layout, numbering, signature, QR verification, revocation."""
