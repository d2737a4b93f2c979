"""Accent-, case- and order-insensitive search over cases: a folded `cases.search_text` column."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, true

from mailflow.textnorm import fold

MAX_TERMS = 8
SEARCHED_FIELDS = (
    "nombre",
    "apellido",
    "documento",
    "carne",
    "pasaporte",
    "correo",
    "email",
    "expediente",
)
"""Field ids (case.fields keys) whose values are searchable when the id contains one of these."""


def search_text(
    number: str | None,
    name: str | None,
    document: str | None,
    email: str | None,
    fields: Mapping[str, Any] | None = None,
) -> str:
    """The folded text a case is found by: ' ' + words + ' ' (lower case, no accents).

    Takes the case number, applicant name, document and email plus the values of `fields`
    whose id names a person or an identity number (SEARCHED_FIELDS). Returns one string of
    folded words separated by single spaces, with a space at both ends.
    """
    parts: list[str] = [p for p in (number, name, document, email) if p]
    for key, value in (fields or {}).items():
        if any(word in key for word in SEARCHED_FIELDS):
            inner = value.get("value") if isinstance(value, dict) else value
            if isinstance(inner, (str, int)) and len(str(inner)) <= 200:
                parts.append(str(inner))
    words = dict.fromkeys(fold(" ".join(parts)).split())
    return " " + " ".join(words) + " "


_CASE_NUMBER = re.compile(r"^\s*([A-Za-z]{2,6})[\s-]+(20\d\d)[\s-]+(\d{1,8})\s*$")


def case_number(query: str) -> str | None:
    """The case number a query spells in full ('exp 2026 000123' → 'EXP-2026-000123'), or None.

    A full case number is searched exactly, so it does not also find the documents and
    carnés that contain its digits.
    """
    found = _CASE_NUMBER.match(query)
    return f"{found[1].upper()}-{found[2]}-{int(found[3]):06d}" if found else None


def terms(query: str) -> list[str]:
    """The folded words of a search box entry (at most MAX_TERMS, each searched anywhere)."""
    return list(dict.fromkeys(fold(query).split()))[:MAX_TERMS]


def matches(column: Any, query: str) -> ColumnElement[bool]:
    """A WHERE clause: every term of `query` occurs in `column` (a folded search_text column).

    Order of the words and accents/case do not matter ("oriana rivas" finds "Rivas, Oriana").
    A term matches anywhere inside a word, so "lopez" finds "López" and "1234" a document
    "12345678". On PostgreSQL the LIKE is served by the pg_trgm GIN index of migration 0003.
    """
    words = terms(query)
    if not words:
        return true()
    return and_(*(column.like(f"%{_escape(w)}%", escape="\\") for w in words))


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def all_terms(texts: Iterable[str], query: str) -> bool:
    """Whether every term of `query` occurs in the folded join of `texts` (in-memory filter)."""
    haystack = fold(" ".join(texts))
    return all(w in haystack for w in terms(query))
