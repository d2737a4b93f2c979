"""`mailflow run` serves the web desk on the configured bind and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.mailservice import write_config
from tests.support.waiting import GENEROUS_SECONDS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_run_serves_the_desk_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = write_config(tmp_path, None, None, web={"enabled": True, "port": port})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + GENEROUS_SECONDS
        status, body = 0, ""
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/login")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200 and "Contraseña" in body
        status, _ = _get(f"http://127.0.0.1:{port}/verificar/XXXXX-00000")
        assert status == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(GENEROUS_SECONDS) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(GENEROUS_SECONDS)
