"""Intake: from a parsed message to a Decision (procedure, fields, attachments, signatures, checks)."""
