"""Memory while draining a large mailbox: peak RSS for N/10 and N messages should match."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tests.dovecot import Dovecot
from tests.test_memory import _append, _child, _padded

MIB = 1 << 20


def _one(server: Dovecot, count: int, tmp: Path) -> dict[str, Any]:
    account = server.new_user()
    _append(account, [_padded(i) for i in range(count)])
    result = _child(tmp, account, "process", timeout=120 + count / 10)
    grown = (result["after"] - result["before"]) / MIB
    return {
        "messages": result["processed"],
        "peak_rss_mib": round(result["after"] / MIB, 1),
        "rss_growth_mib": round(grown, 1),
    }


def drain_scaling(server: Dovecot, _sink: Any, _kit: Any, count: int) -> dict[str, dict[str, Any]]:
    """Drain and process count/10 then count messages (~20 KB each) in fresh processes."""
    small = max(1, count // 10)
    with tempfile.TemporaryDirectory(prefix="mailflow-drain-") as tmp:
        return {
            f"drain-{small}": _one(server, small, Path(tmp) / "small"),
            f"drain-{count}": _one(server, count, Path(tmp) / "large"),
        }
