"""Forked companions of a run (runners/child.py): results, messages both ways, failures, and
no companion outliving a killed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mailflow.runners.child import Channel, Child, ChildError, can_fork
from tests.support.waiting import GENEROUS_SECONDS, wait_for

REPO = Path(__file__).resolve().parents[2]


class _App:  # what a companion needs of the App: nothing but a __dict__ without a database
    pass


def test_companions_are_available_here() -> None:
    assert can_fork()  # Linux: what `run --once` uses (elsewhere it keeps its threads)


def test_the_result_comes_back_and_messages_go_both_ways() -> None:
    def job(channel: Channel) -> dict[str, Any]:
        got: list[Any] = []
        channel.send("listo")
        while "fin" not in got:
            got += channel.receive(GENEROUS_SECONDS)
        return {"pid": os.getpid(), "got": got}

    child = Child("prueba", _App(), job)  # type: ignore[arg-type]
    child.start()
    assert child.receive(GENEROUS_SECONDS) == ["listo"]
    child.send("uno")
    child.send("fin")
    result = child.result()
    assert result["got"] == ["uno", "fin"] and result["pid"] != os.getpid()
    assert child.finished and child.pid is None  # reaped


def test_a_failing_job_raises_in_the_run_with_its_traceback() -> None:
    def job(_channel: Channel) -> None:
        raise ValueError("buzón ilegible")

    child = Child("ingesta", _App(), job)  # type: ignore[arg-type]
    child.start()
    with pytest.raises(ChildError, match=r"(?s)ingesta: .*ValueError: buzón ilegible"):
        child.result()


def test_a_companion_killed_without_result_is_reported() -> None:
    def job(_channel: Channel) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    child = Child("envío", _App(), job)  # type: ignore[arg-type]
    child.start()
    with pytest.raises(ChildError, match="envío: el proceso terminó sin resultado"):
        child.result()


def test_a_companion_dies_with_its_run(tmp_path: Path) -> None:
    """SIGKILL the run: its companion must not go on sending or storing on its own."""
    pid_file = tmp_path / "companion.pid"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from mailflow.runners.child import Child

        class App: pass

        def job(channel):
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            while True:
                time.sleep(0.05)

        Child("envío", App(), job).start()
        time.sleep(600)
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
        companion = int(pid_file.read_text())
        assert _alive(companion)
    finally:
        run.kill()
        run.wait()
    assert wait_for(lambda: not _alive(companion))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
