"""`mailflow run` moves its start-up objects out of the garbage collector's reach."""

from __future__ import annotations

import gc
import weakref

from mailflow.ops.runcmd import settle_startup_objects


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_startup_garbage_is_collected_and_the_rest_frozen() -> None:
    garbage = weakref.ref(_Cycle())  # unreachable at once, kept only by its own cycle
    alive = _Cycle()
    try:
        settle_startup_objects()
        assert garbage() is None  # collected first, not frozen for good
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # full collections skip it
    finally:
        gc.unfreeze()
    assert any(o is alive for o in gc.get_objects())
