"""The `mailflow` command line: check, calendar, and the service commands."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from mailflow.app import App
from mailflow.config import Settings, load_settings
from mailflow.errors import MailflowError


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config"))
    settings: Settings = obj["settings"]
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ruta de config.yaml (por defecto MAILFLOW_CONFIG o ./config.yaml).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """mailflow: mesa de partes virtual."""
    ctx.ensure_object(dict)["config"] = config


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Un objeto JSON por línea.")
@click.option(
    "--trust-root",
    "trust_roots",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certificado raíz de confianza (PEM); repetible.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def check(
    ctx: click.Context, as_json: bool, trust_roots: tuple[Path, ...], files: tuple[Path, ...]
) -> None:
    """Muestra lo que mailflow decidiría para cada mensaje, sin efectos."""
    from mailflow.checking import check_files, render_table

    settings = _settings(ctx)
    if trust_roots:
        sig = settings.signatures.model_copy(
            update={"trust_roots": settings.signatures.trust_roots + tuple(trust_roots)}
        )
        settings = settings.model_copy(update={"signatures": sig})
    app = App(settings)
    app.validate()
    results = check_files(app, files)
    if as_json:
        for row in results:
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        click.echo(render_table(results))
    unreadable = [row for row in results if row.get("error") == "unreadable"]
    for row in unreadable:
        click.echo(f"mailflow check: {row['reasons'][0]}", err=True)
    if unreadable:
        ctx.exit(1)


@cli.group()
def calendar() -> None:
    """Calendario de días hábiles."""


@calendar.command("due")
@click.option("--received", required=True, help="Fecha y hora de recepción (ISO 8601).")
@click.option("--days", required=True, type=click.IntRange(0, 3650), help="Plazo en días hábiles.")
@click.option("--explain", is_flag=True, help="Explica el cómputo del plazo y sus fuentes legales.")
@click.option(
    "--office",
    default=None,
    help="Oficina receptora (rules/calendar.yaml; por defecto la de calendar.default_office).",
)
@click.pass_context
def calendar_due(
    ctx: click.Context, received: str, days: int, explain: bool, office: str | None
) -> None:
    """Imprime la fecha de vencimiento (AAAA-MM-DD)."""
    try:
        when = dt.datetime.fromisoformat(received)
    except ValueError as exc:
        raise click.BadParameter(
            f"fecha ISO inválida: {received!r}", param_hint="--received"
        ) from exc
    app = App(_settings(ctx))
    try:
        cals = app.calendarios
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    if office is not None and office not in cals.rules.offices:
        raise click.BadParameter(
            f"oficina desconocida {office!r} (definidas: {', '.join(cals.rules.offices)})",
            param_hint="--office",
        )
    cal = cals.for_office(office)
    click.echo(cal.due_date(when, days).isoformat())
    if explain:
        for line in cal.explain_due(when, days):
            click.echo(f"  {line}", err=True)


@calendar.command("check")
@click.pass_context
def calendar_check(ctx: click.Context) -> None:
    """Valida rules/calendar.yaml y las oficinas de los buzones (archivo:línea: mensaje)."""
    app = App(_settings(ctx))
    try:
        cals = app.calendarios
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    rules = cals.rules
    click.echo(
        f"{rules.path}: {len(rules.offices)} oficina(s), {len(rules.entries)} entrada(s): correcto"
    )


@calendar.command("apply")
@click.pass_context
def calendar_apply(ctx: click.Context) -> None:
    """Recalcula los expedientes afectados por un cambio del calendario legal e informa qué
    se movió (también se hace al iniciar el servicio)."""
    from mailflow.recalculo import apply_calendar
    from mailflow.runcmd import prepare

    try:
        app = prepare(_settings(ctx))
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    moved = apply_calendar(app, dt.datetime.now(dt.UTC))
    for m in moved:
        click.echo(m.line())
    cases = len({m.case_number for m in moved})
    click.echo(f"calendario aplicado: {cases} expediente(s) con cambios, {len(moved)} cambio(s)")


@cli.group()
def keys() -> None:
    """Claves y certificados de firma."""


@keys.command("demo")
@click.pass_context
def keys_demo_cmd(ctx: click.Context) -> None:
    """Crea una CA local de prueba y el certificado de firma de la institución (demo y pruebas)."""
    from mailflow.keys import keys_demo

    click.echo(keys_demo(_settings(ctx)))


@cli.command()
@click.option(
    "--once", is_flag=True, help="Procesa todo lo pendiente, envía la bandeja de salida y termina."
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--no-web", is_flag=True, help="No inicia la mesa de partes web.")
@click.pass_context
def run(ctx: click.Context, once: bool, workers: int, no_web: bool) -> None:
    """El servicio: ingreso de correo, proceso, plazos, envío y web."""
    from mailflow.runcmd import run as run_service

    settings = _settings(ctx)
    if no_web:
        settings = settings.model_copy(
            update={"web": settings.web.model_copy(update={"enabled": False})}
        )
    sys.exit(run_service(settings, once, workers))


@cli.command()
@click.option("--host", default=None, help="Dirección (por defecto web.host).")
@click.option("--port", type=int, default=None, help="Puerto (por defecto web.port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Solo la mesa de partes web."""
    import uvicorn

    from mailflow.runcmd import start
    from mailflow.web import create_app

    try:
        app = start(_settings(ctx))
    except MailflowError as exc:
        print(f"mailflow serve: {exc}", file=sys.stderr)
        sys.exit(2)
    web = app.settings.web
    uvicorn.run(
        create_app(app.settings, app.database, app=app),
        host=host or web.host,
        port=web.port if port is None else port,
        log_level="info",
    )


@cli.command()
@click.option("--smtp-port", type=int, default=2525, show_default=True)
@click.option("--web-port", type=int, default=8080, show_default=True)
@click.option(
    "--exit-after-samples",
    is_flag=True,
    help="Termina cuando las solicitudes de ejemplo han sido procesadas y respondidas.",
)
@click.pass_context
def demo(ctx: click.Context, smtp_port: int, web_port: int, exit_after_samples: bool) -> None:
    """Todo integrado: SQLite, SMTP local, correo capturado en carpeta, web y ejemplos."""
    from mailflow.demo import run_demo

    sys.exit(
        run_demo(
            _settings(ctx),
            smtp_port=smtp_port,
            web_port=web_port,
            exit_after_samples=exit_after_samples,
        )
    )


@cli.group()
def registry() -> None:
    """Registro de personas (hojas de cálculo de la comisión)."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "options",
    multiple=True,
    metavar="COLUMNA=CAMPO",
    help="Asigna una columna (título, número o letra) a un campo; repetible. CAMPO: "
    "full_name, document_number, carne_extranjeria, email, status, nationality, phone.",
)
@click.option("--dry-run", is_flag=True, help="Solo muestra la vista previa; no importa.")
@click.pass_context
def registry_import(
    ctx: click.Context, file: Path, options: tuple[str, ...], dry_run: bool
) -> None:
    """Importa un CSV o XLSX (misma asignación, validación y filas rechazadas que la web)."""
    from mailflow.registry_command import import_file
    from mailflow.runcmd import prepare

    try:
        app = prepare(_settings(ctx))
    except MailflowError as exc:
        click.echo(f"mailflow registry import: {exc}", err=True)
        sys.exit(2)
    result = import_file(app.database, file, options, dry_run=dry_run)
    for line in result.lines:
        click.echo(line, err=result.code == 2)
    sys.exit(result.code)


@cli.group()
def users() -> None:
    """Cuentas del personal."""


@users.command("add")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="Nombre completo.")
@click.option("--role", type=click.Choice(["staff", "manager", "admin"]), required=True)
@click.password_option("--password", help="Contraseña (se pide si no se da).")
@click.pass_context
def users_add(ctx: click.Context, username: str, full_name: str, role: str, password: str) -> None:
    """Crea una cuenta."""
    from mailflow.runcmd import prepare
    from mailflow.users import add_user

    app = prepare(_settings(ctx))
    with app.database.session() as session:
        add_user(session, username, full_name, role, password)
    click.echo(f"Cuenta creada: {username} ({role})")


@users.command("passwd")
@click.argument("username")
@click.password_option("--password", help="Nueva contraseña (se pide si no se da).")
@click.pass_context
def users_passwd(ctx: click.Context, username: str, password: str) -> None:
    """Cambia la contraseña (y desbloquea la cuenta)."""
    from mailflow.runcmd import prepare
    from mailflow.users import set_password

    app = prepare(_settings(ctx))
    with app.database.session() as session:
        set_password(session, username, password)
    click.echo(f"Contraseña actualizada: {username}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Lista las cuentas."""
    from mailflow.runcmd import open_existing
    from mailflow.users import list_users

    app = open_existing(_settings(ctx))
    with app.database.session(readonly=True) as session:
        for user in list_users(session):
            state = "activa" if user.active else "desactivada"
            click.echo(f"{user.username:16} {user.role:8} {state:12} {user.full_name}")


@cli.group()
def outbox() -> None:
    """Respuestas no entregadas: listar y reenviar."""


@outbox.command("list")
@click.pass_context
def outbox_list(ctx: click.Context) -> None:
    """Lista las respuestas que fallaron o esperan reintento."""
    from mailflow.outbox import undelivered
    from mailflow.runcmd import prepare

    app = prepare(_settings(ctx))
    with app.database.session(readonly=True) as session:
        rows = undelivered(session)
        for row in rows:
            error = (row.last_error or "").splitlines()[0][:80] if row.last_error else ""
            click.echo(
                f"{row.id:6} {row.status:8} intentos={row.attempts:<3} {row.to_addr:30} "
                f"{row.subject[:50]}  {error}"
            )
    if not rows:
        click.echo("No hay respuestas pendientes de entrega.")


@outbox.command("retry")
@click.option("--all", "retry_all", is_flag=True, help="Todas las respuestas fallidas.")
@click.argument("ids", nargs=-1, type=int)
@click.pass_context
def outbox_retry(ctx: click.Context, retry_all: bool, ids: tuple[int, ...]) -> None:
    """Vuelve a poner en cola las respuestas IDS (o --all las fallidas); las envía `run`."""
    from mailflow.outbox import resend
    from mailflow.runcmd import prepare

    if retry_all == bool(ids):
        raise click.UsageError("indique los números de las respuestas o --all (no ambos)")
    app = prepare(_settings(ctx))
    with app.database.session() as session:
        done = resend(session, None if retry_all else ids, actor="operador (CLI)", now=_now())
    click.echo(f"{len(done)} respuesta(s) en cola de nuevo: {', '.join(map(str, done)) or '—'}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@cli.command()
@click.pass_context
def health(ctx: click.Context) -> None:
    """Estado operativo en JSON; código de salida 1 si algo requiere atención."""
    from mailflow.health import health as report

    app = App(_settings(ctx))
    result = report(app, dt.datetime.now(dt.UTC))
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    sys.exit(0 if result["ok"] else 1)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Crea DIR con un config.yaml comentado y una copia de la política para editar."""
    from mailflow.policy_files import init_directory

    written = init_directory(directory)
    click.echo(f"Creado en {directory}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(
        "Edite config.yaml y la política; valídela con "
        f"`mailflow policy check {directory}` y úsela con "
        f"`export MAILFLOW_CONFIG={written[0].resolve()}`."
    )


@cli.group()
def policy() -> None:
    """La política de la institución: reglas, máquinas de estados y plantillas."""


@policy.command("check")
@click.argument(
    "directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.pass_context
def policy_check(ctx: click.Context, directory: Path | None) -> None:
    """Valida la política de DIR (o la configurada); cada problema como `archivo:línea: mensaje`."""
    from mailflow.policy_check import check_policy, policy_settings

    settings = _settings(ctx)
    if directory is not None:
        settings = policy_settings(directory, settings)
    problems = check_policy(settings)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo(
        f"Política válida: {settings.rules_dir}, {settings.state_machines_dir}, "
        f"{settings.templates_dir}"
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print a clear message and exit 2, never a traceback."""
    from mailflow.filemodes import restrict_new_files

    restrict_new_files()  # every data file this command creates is owner-only
    try:
        code = cli.main(args=argv, prog_name="mailflow", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrumpido.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MailflowError as exc:
        click.echo(f"mailflow: {exc}", err=True)
        sys.exit(2)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)  # ctx.exit(N) from a command (e.g. check with unreadable files)
