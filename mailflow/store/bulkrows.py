"""Rows written in bulk at the end of a transaction instead of one ORM object and flush each.

Append-only rows nobody needs the id of right away (audit events, a case's thread entries)
are kept in `session.info` and inserted with one executemany per table: before the outermost
commit, before any statement that reads or writes one of their tables (so a query in the
same transaction sees them), and before an ORM flush that inserts into one of their tables (so
ids keep the order in which rows were added). A row whose id is needed at once (`insert_now`)
takes its table's queued rows with it, ahead of it, in one INSERT … RETURNING; the other
tables' rows stay queued. Statements run straight on `session.connection()` are not seen:
one that reads a queued table must flush it (`flush_rows`) and one that inserts into it must
be `insert_now`. Savepoint-aware: rows added while a savepoint
(`session.begin_nested()`) is open are dropped if that savepoint, or any transaction around
it, rolls back; rows already inserted roll back with the database.

Each buffered row is tagged with the innermost transaction open when it was added; a rollback
of transaction T drops the rows whose tag is T or nested inside T. Rows of an outer
transaction that happened to be inserted while T was open are undone by the database with T:
they are queued again. The listeners are attached to a session the first time it buffers a
row (per-session state only, no globals). Statements that read queued rows themselves pass
the execution option SEES_PENDING (and add `pending(...)`) so the queue is not emptied early.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, Table, event, insert
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    SessionTransaction,
    UOWTransaction,
    make_transient_to_detached,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.util import find_tables

_KEY = "mailflow.store.bulkrows"
SEES_PENDING = "mailflow_sees_pending"
"""Execution option: the statement's caller adds the queued rows itself (`pending`), so they
need not be inserted before it runs."""


_Row = tuple[SessionTransaction | None, Table, dict[str, Any]]


@dataclass
class _Buffer:
    """One session's pending rows: (transaction tag, table, values), in the order added."""

    rows: list[_Row] = field(default_factory=list)
    tables: set[str] = field(default_factory=set)  # names of the tables with pending rows
    flushing: bool = False
    # rows inserted while a savepoint was open, with that savepoint: if it rolls back, the
    # rows that belong to a transaction around it are queued again
    inserted: list[tuple[SessionTransaction, _Row]] = field(default_factory=list)
    # rows added with `kept=True` in the current outermost transaction (`kept_root`), inserted
    # or not, minus those of rolled back (sub)transactions: see `kept_rows`
    kept: list[_Row] = field(default_factory=list)
    kept_root: SessionTransaction | None = None
    shapes: dict[tuple[Any, ...], frozenset[str]] = field(default_factory=dict)  # see _tables_of
    inserts: dict[str, Insert] = field(default_factory=dict)  # one INSERT per table, reused
    returning: dict[str, Insert] = field(default_factory=dict)  # … RETURNING its key (insert_now)
    # ORM objects whose rows were inserted with Core and then attached (`adopt`), with the
    # innermost transaction open then: a rollback of it expunges them, as it does new objects
    adopted: list[tuple[SessionTransaction | None, object]] = field(default_factory=list)
    # ORM objects whose rows were updated with Core (`updated_without_orm`): a rollback of
    # the transaction open then expires them, as it does the objects the ORM updated itself
    touched: list[tuple[SessionTransaction | None, object]] = field(default_factory=list)


def add_row(
    session: Session,
    table: Table,
    values: Mapping[str, Any],
    *,
    kept: bool = False,
    tag: SessionTransaction | None = None,
) -> None:
    """Queue one row of `table` (column name → value, every row of a table with the same
    keys) for insertion in `session`'s current transaction; see the module docstring.
    `kept`: also remember it for `kept_rows` until the outermost transaction ends. `tag`: the
    (sub)transaction whose rollback drops the row, when it is not the innermost one open now
    (a row made earlier and queued later: the transaction open when it was made)."""
    buffer = _buffer(session)
    if tag is None:
        tag = session.get_nested_transaction() or session.get_transaction()
    row = (tag, table, dict(values))
    buffer.rows.append(row)
    buffer.tables.add(table.name)
    if kept:
        root = session.get_transaction()
        if buffer.kept_root is not root:
            buffer.kept, buffer.kept_root = [], root
        buffer.kept.append(row)


def adopt(session: Session, obj: object) -> None:
    """Attach `obj`, whose row this transaction has just inserted without the ORM and whose
    every column attribute (primary key included) is set, to `session` as a persistent
    object; if the (sub)transaction open now rolls back, it is expunged, as the ORM does with
    the objects it inserted itself. Saves the unit of work's insert of one object."""
    make_transient_to_detached(obj)
    session.add(obj)
    buffer = _buffer(session)
    tag = session.get_nested_transaction() or session.get_transaction()
    buffer.adopted.append((tag, obj))


def updated_without_orm(session: Session, obj: object, values: Mapping[str, Any]) -> None:
    """Record on the persistent `obj` the column values (attribute name → value) that this
    transaction has just written to its row without the ORM, as committed (nothing left to
    flush for them); if the (sub)transaction open now rolls back, `obj` is expired, as the
    ORM does with the objects it updated itself."""
    for key, value in values.items():
        set_committed_value(obj, key, value)
    buffer = _buffer(session)
    tag = session.get_nested_transaction() or session.get_transaction()
    buffer.touched.append((tag, obj))


def kept_rows(session: Session, table: Table, column: str, value: Any) -> list[dict[str, Any]]:
    """The rows of `table` whose `column` is `value`, added with `kept=True` in `session`'s
    current outermost transaction, inserted yet or not, in the order added, without those of
    rolled back savepoints (copies of their values). Lets a caller that knows every row of
    some key was added in this transaction (a case created in it) skip the query."""
    buffer = session.info.get(_KEY)
    if buffer is None or buffer.kept_root is None:
        return []
    if buffer.kept_root is not session.get_transaction():
        buffer.kept, buffer.kept_root = [], None
        return []
    return [dict(v) for _, t, v in buffer.kept if t is table and v.get(column) == value]


def pending(session: Session, table: Table) -> list[dict[str, Any]]:
    """The rows of `table` queued in `session` and not yet inserted (copies of their values)."""
    buffer = session.info.get(_KEY)
    if buffer is None:
        return []
    return [dict(values) for _, t, values in buffer.rows if t is table]


def flush_rows(session: Session) -> int:
    """Insert every queued row now (one executemany per run of rows of one table and keys);
    returns how many. Called by the listeners; callers rarely need it."""
    buffer = session.info.get(_KEY)
    if buffer is None or not buffer.rows or buffer.flushing:
        return 0
    rows = buffer.rows
    # the rows refer only to rows already in the database: no ORM flush first, and nothing
    # of the ORM's statement handling (straight on the transaction's connection)
    _insert_rows(session, buffer, rows)
    return len(rows)


def insert_now(session: Session, table: Table, values: Mapping[str, Any]) -> int:
    """Insert one row of `table` (column name → value, the keys of the table's queued rows)
    at once and return its new primary key (an integer the database assigns). The rows of
    `table` still queued go with it in the same multi-row INSERT … RETURNING, ahead of it, so
    ids keep the order in which rows were added; the queued rows of other tables stay queued.
    The row itself is never queued: a rollback undoes it with the database. Raises what the
    INSERT raises."""
    buffer = _buffer(session)
    row = dict(values)
    mine = [r for r in buffer.rows if r[1] is table]
    if any(r[2].keys() != row.keys() for r in mine):  # another shape: in their own statement
        _insert_rows(session, buffer, mine)
        mine = []
    else:
        _dequeue(session, buffer, mine)
    statement = buffer.returning.get(table.name)
    if statement is None:
        (key,) = table.primary_key.columns
        statement = buffer.returning[table.name] = insert(table).returning(key)
    # one statement for every row (insertmanyvalues): ids are given in the order of the rows,
    # so the new row, the last one, has the highest (RETURNING's own order is not promised)
    ids = session.connection().execute(statement, [*(r[2] for r in mine), row]).scalars()
    return int(max(ids))


def _dequeue(session: Session, buffer: _Buffer, rows: list[_Row]) -> None:
    """Take `rows` off the queue as inserted now (see flush_rows: a rolled back savepoint
    that they were inserted in queues the outer transactions' ones again)."""
    if not rows:
        return
    taken = {id(r) for r in rows}
    buffer.rows = [r for r in buffer.rows if id(r) not in taken]
    buffer.tables = {t.name for _, t, _ in buffer.rows}
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        buffer.inserted += [(savepoint, r) for r in rows]


def _insert_rows(session: Session, buffer: _Buffer, rows: list[_Row]) -> None:
    """Take `rows` off the queue and insert them now (one executemany per table and keys)."""
    if not rows:
        return
    _dequeue(session, buffer, rows)
    buffer.flushing = True
    try:
        connection = session.connection()
        for table, batch in _runs(rows):
            statement = buffer.inserts.get(table.name)
            if statement is None:
                statement = buffer.inserts[table.name] = insert(table)
            connection.execute(statement, batch)
    finally:
        buffer.flushing = False


def _runs(
    rows: Iterable[tuple[SessionTransaction | None, Table, dict[str, Any]]],
) -> Iterable[tuple[Table, list[dict[str, Any]]]]:
    """The rows grouped by table and keys, each group in the order added (ids then follow
    that order within a table; no queued row refers to another queued row)."""
    groups: dict[tuple[str, tuple[str, ...]], tuple[Table, list[dict[str, Any]]]] = {}
    for _, table, values in rows:
        key = (table.name, tuple(values))
        if key not in groups:
            groups[key] = (table, [])
        groups[key][1].append(values)
    return groups.values()


def _buffer(session: Session) -> _Buffer:
    buffer = session.info.get(_KEY)
    if buffer is None:
        buffer = session.info[_KEY] = _Buffer()
        event.listen(session, "do_orm_execute", _before_statement)
        event.listen(session, "before_flush", _before_flush)
        event.listen(session, "before_commit", _before_commit)
        event.listen(session, "after_soft_rollback", _after_rollback)
    return buffer


def _before_statement(state: ORMExecuteState) -> None:
    buffer = state.session.info.get(_KEY)
    if buffer is None or not buffer.rows or buffer.flushing:
        return
    if state.execution_options.get(SEES_PENDING):
        return
    statement = state.statement
    if not isinstance(statement, ClauseElement) or isinstance(statement, TextClause):
        flush_rows(state.session)  # SQL text or an unknown shape: insert the rows first
        return
    if not buffer.tables.isdisjoint(_tables_of(buffer, statement)):
        flush_rows(state.session)


def _tables_of(buffer: _Buffer, statement: ClauseElement) -> frozenset[str]:
    """The names of the tables `statement` reads or writes, remembered per statement shape
    (its cache key, which the execution computes anyway) for the session's life."""
    cache_key = statement._generate_cache_key()
    if cache_key is not None:
        known = buffer.shapes.get(cache_key.key)
        if known is not None:
            return known
    touched = find_tables(
        statement,
        check_columns=True,
        include_aliases=True,
        include_joins=True,
        include_crud=True,
    )
    names = frozenset(str(name) for t in touched if (name := getattr(t, "name", None)))
    if cache_key is not None:
        buffer.shapes[cache_key.key] = names
    return names


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    buffer = session.info.get(_KEY)
    if buffer is None or not buffer.rows or buffer.flushing:
        return
    names = {getattr(obj, "__tablename__", None) for obj in session.new}
    if names & buffer.tables:  # an ORM insert into a buffered table: keep the id order
        flush_rows(session)


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is None:  # the outermost commit, not a RELEASE
        flush_rows(session)
        buffer = session.info.get(_KEY)
        if buffer is not None:
            buffer.inserted = []
            buffer.kept, buffer.kept_root = [], None
            buffer.adopted = []
            buffer.touched = []


def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    buffer = session.info.get(_KEY)
    if buffer is None:
        return
    # rows of outer transactions that were inserted inside the rolled back one are undone
    # by the database: they are queued again, ahead of the rest (they are older)
    undone = [row for tx, row in buffer.inserted if _within(tx, previous)]
    buffer.inserted = [(tx, row) for tx, row in buffer.inserted if not _within(tx, previous)]
    again = [row for row in undone if not _within(row[0], previous)]
    buffer.rows = again + [row for row in buffer.rows if not _within(row[0], previous)]
    buffer.tables = {table.name for _, table, _ in buffer.rows}
    buffer.kept = [row for row in buffer.kept if not _within(row[0], previous)]
    gone = [obj for tag, obj in buffer.adopted if _within(tag, previous)]
    buffer.adopted = [(tag, obj) for tag, obj in buffer.adopted if not _within(tag, previous)]
    for obj in gone:
        if obj in session:
            session.expunge(obj)
    stale = [obj for tag, obj in buffer.touched if _within(tag, previous)]
    buffer.touched = [(tag, obj) for tag, obj in buffer.touched if not _within(tag, previous)]
    for obj in stale:
        if obj in session:
            session.expire(obj)


def within(tag: SessionTransaction | None, ended: SessionTransaction) -> bool:
    """Whether something tagged with transaction `tag` (the innermost one open when it was
    done; None: before any began) happened inside transaction `ended` or one nested in it."""
    return _within(tag, ended)


def _within(tag: SessionTransaction | None, ended: SessionTransaction) -> bool:
    """Whether a row tagged `tag` was added inside transaction `ended` (or nested in it)."""
    if tag is None:
        return True  # added before any transaction began: it belongs to the outermost one
    node: SessionTransaction | None = tag
    while node is not None:
        if node is ended:
            return True
        node = node.parent
    return False
