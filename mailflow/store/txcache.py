"""Per-transaction memory: facts a transaction may reuse instead of asking the database again.

`tx_info(session)` is a dict that lives as long as the session's outermost transaction: a
new transaction (or none) gets a new, empty one, so nothing read by one transaction is ever
trusted by the next. Only facts that this transaction's own writes cannot make stale, or that
those writes keep up to date, belong here (see `fresh_case_timers`).
"""

from __future__ import annotations

from typing import Any

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
