"""A burst of logins against the real server does not stall the public /verificar page
(argon2 and database work run in worker threads, not on the event loop; issue 14, item 4)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from mailflow.config import load_settings
from mailflow.ops.runcmd import prepare
from mailflow.web.users import add_user
from tests.support.mailservice import write_config

LOGINS = 40
BOUND_S = 3.0  # /verificar answers within this while the logins run (9 s before the fix)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the web server exited"
        try:
            if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the web server did not start within 60 s")


def test_forty_parallel_logins_do_not_slow_verificar(tmp_path: Path) -> None:
    port = _free_port()
    limits = {"login_failures_per_address": 1000, "login_failures_per_account": 1000}
    config = write_config(tmp_path, None, None, web={"enabled": True, "port": port, **limits})
    app = prepare(load_settings(config, env={}))
    with app.database.session() as session:
        add_user(session, "ana", "Ana Quispe", "staff", "clave-segura-123")
    app.database.dispose()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "--config", str(config), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(base, proc)
        with httpx.Client(base_url=base, timeout=120) as first:
            page = first.get("/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found
            cookies = dict(first.cookies)
        form = {"username": "ana", "password": "no-es-la-clave", "csrf_token": found.group(1)}

        def login(_: int) -> int:
            with httpx.Client(base_url=base, timeout=120, cookies=cookies) as c:
                return c.post("/login", data=form).status_code

        latencies: list[float] = []
        with ThreadPoolExecutor(LOGINS) as pool, httpx.Client(base_url=base, timeout=120) as c:
            futures = [pool.submit(login, n) for n in range(LOGINS)]
            while sum(f.done() for f in futures) < LOGINS // 2:  # measure while they run
                start = time.monotonic()
                assert c.get("/verificar/XXXXX-00000").status_code == 404
                latencies.append(time.monotonic() - start)
            statuses = [f.result() for f in futures]
        assert statuses == [401] * LOGINS
        assert latencies, "the logins finished before /verificar could be measured"
        assert max(latencies) < BOUND_S, f"/verificar took {max(latencies):.2f} s"
        print(f"/verificar during {LOGINS} logins: {len(latencies)} requests, max "
              f"{max(latencies):.3f} s")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(30)
