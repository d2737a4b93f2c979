"""find_applicant remembers what each key found for the rest of its transaction (issue 18),
and forgets it as soon as the transaction writes to the registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from mailflow.registry.applicants import find_applicant
from mailflow.store.db import Database
from mailflow.store.models import Applicant

ANA = {"full_name": "Ana Torres Ruiz", "document_number": "P9988776", "email": "ana@example.org"}
LUIS = {"full_name": "Luis Gómez Díaz", "carne_extranjeria": "001234567"}


def _seed(db: Database, *people: dict[str, Any]) -> None:
    with db.session() as s:
        s.add_all(Applicant(**person) for person in people)


@contextmanager
def _counted(db: Database) -> Iterator[list[str]]:
    """The statements on the registry run while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        if "applicants" in sql:
            seen.append(sql)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_key_is_looked_up_once_per_transaction(sqlite_db: Database) -> None:
    _seed(sqlite_db, ANA, LUIS)
    with sqlite_db.session() as s, _counted(sqlite_db) as seen:
        ana = find_applicant(s, document="P9988776")
        assert ana is not None and ana.full_name == ANA["full_name"]
        assert len(seen) == 2  # is anyone registered; who has this document
        assert find_applicant(s, email="ANA@example.org", document="P9988776") is ana
        assert len(seen) == 3  # the address was not asked yet
        assert find_applicant(s, email="ana@example.org") is ana
        assert find_applicant(s, carne="009999999") is None
        assert len(seen) == 4
        assert find_applicant(s, carne="009999999", document="p9988776") is ana
        luis = find_applicant(s, carne="001234567", document="P9988776")  # the carné first
        assert luis is not None and luis.full_name == LUIS["full_name"]
        assert len(seen) == 5
    with sqlite_db.session() as s, _counted(sqlite_db) as seen:  # a new transaction asks again
        assert find_applicant(s, document="P9988776") is not None
        assert len(seen) == 2


def test_writing_the_registry_ends_what_was_remembered(sqlite_db: Database) -> None:
    _seed(sqlite_db, ANA)
    with sqlite_db.session() as s:
        ana = find_applicant(s, email="ana@example.org")
        assert ana is not None and find_applicant(s, document="Z1234567") is None
        ana.email = "ana.torres@example.org"  # not flushed yet: looked up again, flushed first
        assert find_applicant(s, email="ana@example.org") is None
        assert find_applicant(s, email="ana.torres@example.org") is ana
        s.add(Applicant(full_name="Zoe Ruiz", document_number="Z1234567"))
        zoe = find_applicant(s, document="Z1234567")
        assert zoe is not None and zoe.full_name == "Zoe Ruiz"
    with sqlite_db.session() as s:
        ana = find_applicant(s, document="P9988776")
        assert ana is not None and find_applicant(s, email="ana.torres@example.org") is ana
        ana.document_number = "Q1111111"
        s.flush()  # written by a flush of its own: what the document found is forgotten
        assert find_applicant(s, document="P9988776") is None


def test_what_a_rolled_back_savepoint_wrote_is_not_found_after_it(sqlite_db: Database) -> None:
    _seed(sqlite_db, ANA)
    with sqlite_db.session() as s:
        assert find_applicant(s, document="Z1234567") is None
        savepoint = s.begin_nested()
        s.add(Applicant(full_name="Zoe Ruiz", document_number="Z1234567"))
        assert find_applicant(s, document="Z1234567") is not None
        savepoint.rollback()
        assert find_applicant(s, document="Z1234567") is None
        assert find_applicant(s, document="P9988776") is not None


def test_a_person_found_and_then_let_go_by_the_session_is_looked_up_again(
    sqlite_db: Database,
) -> None:
    _seed(sqlite_db, ANA)
    with sqlite_db.session() as s:
        ana = find_applicant(s, document="P9988776")
        assert ana is not None
        s.expunge(ana)
        again = find_applicant(s, document="P9988776")
        assert again is not None and again is not ana and again in s


def test_each_transaction_of_one_session_asks_again(sqlite_db: Database) -> None:
    with Session(sqlite_db.engine) as s:
        with s.begin():
            assert find_applicant(s, document="P9988776") is None
        _seed(sqlite_db, ANA)  # registered by another session in between
        with s.begin():
            assert find_applicant(s, document="P9988776") is not None
