"""Alembic migrations of the mailflow schema (run them with mailflow.db.Database.migrate)."""
