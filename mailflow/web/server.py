"""Serve the web desk with uvicorn in a background thread, stoppable from the service."""

from __future__ import annotations

import threading
import time

import uvicorn

from mailflow.app import App
from mailflow.web import create_app


class WebServer:
    """One uvicorn server on settings.web host/port, running in its own thread."""

    def __init__(self, app: App, host: str | None = None, port: int | None = None) -> None:
        web = app.settings.web
        config = uvicorn.Config(
            create_app(app.settings, app.database, app=app),
            host=host or web.host,
            port=web.port if port is None else port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the server thread and wait until uvicorn listens, at most `timeout` seconds. Raises
        RuntimeError (Spanish) when the thread dies or the deadline passes.
        """
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                cfg = self.server.config
                raise RuntimeError(f"no se pudo iniciar la web en {cfg.host}:{cfg.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Ask uvicorn to exit and join its thread (at most 10 seconds)."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
