"""`mailflow run [--once]`: build the app, migrate, and run the service once or until a signal."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from types import FrameType

from mailflow.app import App
from mailflow.config import Settings
from mailflow.errors import ConfigError, MailflowError
from mailflow.runners.inbox import Processor
from mailflow.runners.service import RunStats, default_sweep, run_forever, run_once
from mailflow.store.filemodes import restrict_new_files, secure_data_folders

log = logging.getLogger(__name__)


def _summary(stats: RunStats) -> str:
    return (
        f"ingresados={stats.ingested} procesados={stats.processed} "
        f"apartados={stats.set_aside} enviados={stats.sent} reintentos={stats.retried} "
        f"fallidos={stats.failed} recuperados={stats.recovered}"
    )


def prepare(settings: Settings) -> App:
    """The application with every definition validated and the database migrated."""
    secure_data_folders(settings)
    app = App(settings)
    app.validate()
    app.database.migrate()
    return app


def open_existing(settings: Settings) -> App:
    """The application over an existing, migrated database, for commands that only read.

    Raises ConfigError (nothing created) when the SQLite file does not exist or the schema is
    not current, saying which database was looked at and how to point at the right one.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from mailflow.store.dbstatus import require_existing

    require_existing(settings)
    app = App(settings)
    shown = app.database.url.render_as_string(hide_password=True)
    try:
        current = app.database.is_current()
    except SQLAlchemyError as exc:
        app.database.dispose()
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise ConfigError(
            f"no se puede leer la base de datos {shown} ({detail}); compruebe database_url o "
            "MAILFLOW_DATABASE_URL"
        ) from exc
    if not current:
        app.database.dispose()
        raise ConfigError(
            f"la base de datos {shown} no está en la última migración; ejecute "
            "`mailflow run --once` para actualizarla"
        )
    return app


def start(settings: Settings) -> App:
    """`prepare` after the start-up checks (mailflow.ops.startup): refuse to start, listing every
    problem (StartupError), before any mail is read; warnings are logged."""
    from mailflow.ops.startup import verify

    app = App(settings)
    for finding in verify(app):
        log.warning("%s", finding.message)
    secure_data_folders(settings)
    app.database.migrate()
    return app


def settle_startup_objects() -> None:
    """Collect start-up garbage, then move everything alive (modules, policies, compiled
    templates and statements: ~200,000 objects that live as long as the process) out of the
    garbage collector's reach (`gc.freeze`): its full collections during the run walk only
    what the run allocates, and children forked later share those pages untouched."""
    gc.collect()
    gc.freeze()


def apply_calendar_at_startup(app: App) -> int:
    """Apply the legal calendar to the cases (as `mailflow calendar apply`); log what moved
    and return how many changes."""
    import datetime as dt

    from mailflow.cases.recalculo import apply_calendar

    moved = apply_calendar(app, dt.datetime.now(dt.UTC))
    for m in moved:
        log.info("calendario: %s", m.line())
    if moved:
        log.info("calendario aplicado: %d cambio(s) en expedientes", len(moved))
    return len(moved)


def run(
    settings: Settings,
    once: bool,
    workers: int = 1,
    *,
    process: Processor | None = None,
    scheduler: bool = True,
) -> int:
    """Run the service; return the process exit code (0 ok, 1 part failed, 2 cannot start)."""
    restrict_new_files()  # data files owner-only (0600 / 0700)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        logging.getLogger("transitions").setLevel(logging.WARNING)  # one line per callback
    try:
        app = start(settings)
        apply_calendar_at_startup(app)
    except MailflowError as exc:
        print(f"mailflow run: {exc}", file=sys.stderr)
        return 2
    settle_startup_objects()
    try:
        if once:
            stats = run_once(
                app, process=process, sweep=default_sweep if scheduler else None, processes=True
            )
            print(f"mailflow run --once: {_summary(stats)}")
            for error in stats.errors:
                print(f"  error: {error}", file=sys.stderr)
            return 1 if stats.errors else 0
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("señal %s: terminando el mensaje en curso y cerrando", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        web = None
        if settings.web.enabled:
            from mailflow.web.server import WebServer

            web = WebServer(app)
            web.start()
            log.info("mesa de partes web en http://%s:%s", settings.web.host, settings.web.port)
        try:
            run_forever(app, stop, workers=workers, process=process, scheduler=scheduler)
        finally:
            if web is not None:
                web.stop()
        return 0
    finally:
        app.database.dispose()
