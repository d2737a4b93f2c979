"""Per-transaction memory: facts a transaction may reuse instead of asking the database again.

`tx_info(session)` is a dict that lives as long as the session's outermost transaction: a
new transaction (or none) gets a new, empty one, so nothing read by one transaction is ever
trusted by the next. Only facts that this transaction's own writes cannot make stale, or that
those writes keep up to date, belong here (see `fresh_case_timers`); `lookups` is a memory of
look-ups in one table that ends as soon as the transaction writes to that table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "mailflow.store.txcache"


def tx_info(session: Session) -> dict[str, Any]:
    """The memory of `session`'s current outermost transaction (empty outside one)."""
    root = session.get_transaction()
    if root is None:
        return {}
    held = session.info.get(_KEY)
    if held is None or held[0] is not root:
        held = session.info[_KEY] = (root, {})
    info: dict[str, Any] = held[1]
    return info


_LOOKUPS = "mailflow.store.txcache.lookups"  # tx_info key: {model: {key: what was found}}
_WRITTEN = "mailflow.store.txcache.written"  # tx_info key: models written in the transaction
_WATCHED = "mailflow.store.txcache.watched"  # session.info key: the listeners are attached


def lookups(session: Session, model: type[Any]) -> dict[Any, Any] | None:
    """A memory of look-ups in `model`'s table for the rest of `session`'s transaction (the
    caller's key → what it found), or None when what was found may be stale: this transaction
    has written rows of `model` (added, changed or deleted through the session: known when
    they are added or deleted, and at the flush that writes them) or holds some not yet
    flushed; a rolled back savepoint forgets every look-up. For tables the transaction reads
    and seldom or never writes (the registry, the desk accounts); a write made on the
    connection, not through the session, is not seen."""
    _watch(session)
    info = tx_info(session)
    if any(issubclass(w, model) for w in info.get(_WRITTEN, ())) or unflushed(session, model):
        return None
    found: dict[Any, Any] = info.setdefault(_LOOKUPS, {}).setdefault(model, {})
    return found


def unflushed(session: Session, model: type[Any]) -> bool:
    """Whether `session` holds an instance of `model` added, changed or deleted, not flushed."""
    return any(isinstance(o, model) for o in (*session.new, *session.dirty, *session.deleted))


def _watch(session: Session) -> None:
    """Attach (once per session) the listeners that note the models a transaction writes."""
    if session.info.get(_WATCHED):
        return
    session.info[_WATCHED] = True
    event.listen(session, "before_flush", _flushing)
    event.listen(session, "transient_to_pending", _written)
    event.listen(session, "persistent_to_deleted", _written)
    event.listen(session, "after_soft_rollback", _rolled_back)


def _flushing(session: Session, _ctx: object, _instances: object) -> None:
    models = {type(o) for o in (*session.new, *session.dirty, *session.deleted)}
    if models:
        _forget(session, models)


def _rolled_back(session: Session, _previous: object) -> None:
    """A rolled back savepoint may undo rows that were found (written before the listeners
    were attached): every look-up is forgotten."""
    tx_info(session).pop(_LOOKUPS, None)


def _written(session: Session, instance: object) -> None:
    _forget(session, {type(instance)})


def note_written(session: Session, models: set[type[Any]]) -> None:
    """Rows of `models` were written in `session`'s transaction without the unit of work
    (`coreflush`: its UPDATEs fire no `before_flush`): what was looked up in them is gone."""
    _forget(session, models)


def _forget(session: Session, models: set[type[Any]]) -> None:
    """`models` are written in this transaction: what was looked up in them is gone."""
    info = tx_info(session)
    info.setdefault(_WRITTEN, set()).update(models)
    found = info.get(_LOOKUPS, {})
    for model in [m for m in found if any(issubclass(w, m) for w in models)]:
        del found[model]


def flush_as_a_query_would(session: Session) -> None:
    """Flush what a query run now would flush first (the session's autoflush, unless turned
    off), for a caller that answers from memory instead: the rows reach the database at the
    same moment as when it asked, so as many flushes write them (each flush that updates a
    versioned row, a case, raises its version)."""
    if session.autoflush:
        session.flush()
