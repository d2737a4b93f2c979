"""Shared pytest fixtures; fixture families live in their own modules listed here."""

pytest_plugins = ["tests.fixtures_db"]
