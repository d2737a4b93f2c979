"""Alembic migrations of the mailflow schema (run them with mailflow.store.db.Database.migrate)."""
