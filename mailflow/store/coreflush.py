"""A cheaper `session.flush()`: the changed columns of dirty objects written with one Core UPDATE
each, without the unit of work; whatever else is pending is then flushed by the ORM.

For each dirty persistent object of a plain mapper (one table, column attributes only, no
relationships: every model of mailflow.store.models), `flush` does what the unit of work does:

- the mapper's `before_update` listeners run first (models._fold_search_text), then its
  `after_update` ones;
- only the columns whose value differs from the committed one are written (a JSON column
  changed in place counts: MutableDict/MutableList mark it modified); an object with no net
  change is written not at all;
- Python-side `onupdate` defaults of the columns left out are applied by Core (cases.updated_at)
  and kept on the object (a table with SQL or server-side ones is left to the unit of work);
- a versioned mapper (`version_id_col`, Case.lock_version) matches the row by its committed
  version too and writes the next one (the mapper's `version_id_generator`);
- an UPDATE that matches no row raises `StaleDataError`, with the ORM's message (someone else
  changed or deleted the row since it was loaded): the caller's (sub)transaction rolls back;
- the values written become the object's committed state and it is no longer dirty; if the
  (sub)transaction open now rolls back, the object is expired
  (mailflow.store.bulkrows.updated_without_orm), as the ORM does with what it flushed.

Objects are written by table, then primary key (the unit of work's order, so concurrent
writers lock rows in one order). Anything else (new or deleted objects, other mappers, an object
whose primary key or version was set by hand, a dialect that cannot count updated rows) is
left to `session.flush()`, which runs last, so nothing is lost. Session `before_flush`
listeners run only for that rest: mailflow's own need nothing for plain updates (held timers
are inserted by their callers or before the next statement, bulkrows' only matter for ORM
inserts). The statement of each table is built once per session (`session.info`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, Update, bindparam, inspect, update
from sqlalchemy.orm import ColumnProperty, InstanceState, Mapper, Session
from sqlalchemy.orm.exc import StaleDataError

from mailflow.store.bulkrows import updated_without_orm
from mailflow.store.txcache import note_written

_KEY = "mailflow.store.coreflush"
_WHERE = "coreflush_old_"  # prefix of the WHERE clause's parameters (never a column's key)


@dataclass(frozen=True)
class _Plan:
    """How to write the objects of one plain mapper."""

    table: Table
    statement: Update  # UPDATE table WHERE pk = :old_pk [AND version = :old_version]
    columns: dict[str, str]  # column key → attribute key, every column of the table
    attributes: dict[str, Column[Any]]  # attribute key → its column
    keys: tuple[tuple[str, str], ...]  # (attribute key, parameter) of each primary key column
    version: _Version | None


@dataclass(frozen=True)
class _Version:
    """The version column of a versioned mapper (`version_id_col`)."""

    attribute: str
    column: str
    parameter: str  # the committed version, in the WHERE clause
    generator: Callable[[Any], Any]  # the next version from the committed one


def flush(session: Session) -> None:
    """Write every pending change of `session` as `session.flush()` would (see the module
    docstring): the dirty objects of plain mappers with one Core UPDATE each, then the rest
    with `session.flush()`. Returns nothing. Raises `StaleDataError` when a row was changed or
    deleted since it was loaded (its version no longer matches), and whatever the statements
    or `session.flush()` raise; the caller's (sub)transaction should then roll back."""
    dirty = session.dirty
    if dirty:
        plans = _plans(session)
        found = []
        for obj in dirty:
            state = inspect(obj)
            plan = _plan(plans, state.mapper)
            if plan is not None and _writable(state, plan):
                found.append((plan, state))
        if found:
            # the models written here end their look-ups' memory (txcache.lookups), as the
            # unit of work's before_flush would have
            note_written(session, {type(state.obj()) for _, state in found})
            connection = session.connection()
            if connection.dialect.supports_sane_rowcount:  # else the ORM warns, as it does
                found.sort(key=lambda item: (item[0].table.name, _identity(item[1])))
                with session.no_autoflush:
                    for plan, state in found:
                        _write(session, connection, plan, state)
    session.flush()


def _identity(state: InstanceState[Any]) -> tuple[Any, ...]:
    key = state.key
    return tuple(key[1]) if key is not None else ()


def _plans(session: Session) -> dict[Mapper[Any], _Plan | None]:
    plans: dict[Mapper[Any], _Plan | None] | None = session.info.get(_KEY)
    if plans is None:
        plans = session.info[_KEY] = {}
    return plans


def _plan(plans: dict[Mapper[Any], _Plan | None], mapper: Mapper[Any]) -> _Plan | None:
    if mapper not in plans:
        plans[mapper] = _make_plan(mapper)
    return plans[mapper]


def _make_plan(mapper: Mapper[Any]) -> _Plan | None:
    """The plan for `mapper`, or None if it is not plain (left to the unit of work)."""
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or mapper.inherits is not None
        or len(mapper.tables) != 1
        or mapper.relationships
        or mapper.composites
        or mapper.eager_defaults is True
        or set(mapper.primary_key) != set(table.primary_key.columns)
        or any(key.startswith(_WHERE) for key in table.c.keys())  # noqa: SIM118 (column keys)
        or any(_fetched_on_update(c) for c in table.columns)
    ):
        return None
    columns: dict[str, str] = {}
    for prop in mapper.attrs:
        if not isinstance(prop, ColumnProperty) or len(prop.columns) != 1:
            return None
        column = prop.columns[0]
        if not isinstance(column, Column) or column.table is not table:
            return None
        columns[column.key] = prop.key
    primary = list(table.primary_key.columns)
    where = [c == bindparam(_WHERE + c.key, type_=c.type) for c in primary]
    keys = tuple((columns[c.key], _WHERE + c.key) for c in primary)
    version = None
    counter, generator = mapper.version_id_col, mapper.version_id_generator
    if counter is not None:
        if not isinstance(counter, Column) or counter.table is not table or not callable(generator):
            return None  # a version the database sets: left to the unit of work
        where.append(counter == bindparam(_WHERE + counter.key, type_=counter.type))
        version = _Version(columns[counter.key], counter.key, _WHERE + counter.key, generator)
    attributes = {attribute: table.c[column] for column, attribute in columns.items()}
    return _Plan(table, update(table).where(*where), columns, attributes, keys, version)


def _fetched_on_update(column: Column[Any]) -> bool:
    """Whether an UPDATE gives `column` a value the database computes (the ORM would expire
    it): a server-side onupdate or a SQL expression one."""
    onupdate = column.onupdate
    return column.server_onupdate is not None or (
        onupdate is not None and not (onupdate.is_scalar or onupdate.is_callable)
    )


def _writable(state: InstanceState[Any], plan: _Plan) -> bool:
    """Whether `state` is a persistent object whose changes this module can write: every
    changed attribute loaded, its primary key and version (loaded) as the database has them."""
    if not state.persistent:
        return False
    changed, loaded = state.committed_state, state.dict
    if not loaded.keys() >= changed.keys():
        return False
    if any(key in changed or key not in loaded for key, _ in plan.keys):
        return False
    version = plan.version
    return version is None or (
        version.attribute not in changed and loaded.get(version.attribute) is not None
    )


def _write(
    session: Session, connection: Connection, plan: _Plan, state: InstanceState[Any]
) -> None:
    """Write `state`'s changed columns (see the module docstring) and settle it."""
    mapper, obj, values = state.mapper, state.obj(), state.dict
    mapper.dispatch.before_update(mapper, connection, state)
    params: dict[str, Any] = {}
    for key, committed in state.committed_state.items():
        column = plan.attributes[key]  # compared as the ORM compares (an unknown one differs)
        if column.type.compare_values(values[key], committed) is not True:
            params[column.key] = values[key]
    generated: dict[str, Any] = {}  # values the object has not got yet: version, onupdate
    if params:
        for key, name in plan.keys:
            params[name] = values[key]
        version = plan.version
        if version is not None:
            params[version.parameter] = values[version.attribute]
            generated[version.attribute] = params[version.column] = version.generator(
                values[version.attribute]
            )
        result = connection.execute(plan.statement, params)
        if result.rowcount != 1:
            raise StaleDataError(
                f"UPDATE statement on table '{plan.table.description}' expected to update "
                f"1 row(s); {result.rowcount} were matched."
            )
        sent = result.last_updated_params()
        assert isinstance(sent, dict)  # one set of parameters: one row
        for column in result.prefetch_cols() or ():  # onupdate defaults Core added
            generated[plan.columns[column.key]] = sent[column.key]
    updated_without_orm(session, obj, generated)
    state._commit_all(values, session.identity_map)  # the rest is written or unchanged
    mapper.dispatch.after_update(mapper, connection, state)
