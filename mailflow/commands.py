"""The command groups of the `mailflow` CLI: calendar, keys, registry, users, outbox, policy.

`mailflow.cli` holds the root group, the single commands and the entry point, and adds these
groups to it; the commands' names, options, output and exit codes are the CLI contract in
DESIGN.md.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from mailflow.app import App
from mailflow.config import Settings, load_settings
from mailflow.errors import MailflowError


def settings_of(ctx: click.Context) -> Settings:
    """The settings for this invocation: loaded once from the root group's --config (or
    MAILFLOW_CONFIG / ./config.yaml) and kept in the context. Raises ConfigError (a
    MailflowError) when the configuration is invalid."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config"))
    settings: Settings = obj["settings"]
    return settings


@click.group()
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
    app = App(settings_of(ctx))
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
    app = App(settings_of(ctx))
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
    from mailflow.cases.recalculo import apply_calendar
    from mailflow.ops.runcmd import prepare

    try:
        app = prepare(settings_of(ctx))
    except MailflowError as exc:
        raise click.ClickException(str(exc)) from exc
    moved = apply_calendar(app, dt.datetime.now(dt.UTC))
    for m in moved:
        click.echo(m.line())
    cases = len({m.case_number for m in moved})
    click.echo(f"calendario aplicado: {cases} expediente(s) con cambios, {len(moved)} cambio(s)")


@click.group()
def keys() -> None:
    """Claves y certificados de firma."""


@keys.command("demo")
@click.pass_context
def keys_demo_cmd(ctx: click.Context) -> None:
    """Crea una CA local de prueba y el certificado de firma de la institución (demo y pruebas)."""
    from mailflow.ops.keys import keys_demo

    click.echo(keys_demo(settings_of(ctx)))


@click.group()
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
    from mailflow.ops.runcmd import prepare
    from mailflow.registry.command import import_file

    try:
        app = prepare(settings_of(ctx))
    except MailflowError as exc:
        click.echo(f"mailflow registry import: {exc}", err=True)
        sys.exit(2)
    result = import_file(app.database, file, options, dry_run=dry_run)
    for line in result.lines:
        click.echo(line, err=result.code == 2)
    sys.exit(result.code)


@click.group()
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
    from mailflow.ops.runcmd import prepare
    from mailflow.web.users import add_user

    app = prepare(settings_of(ctx))
    with app.database.session() as session:
        add_user(session, username, full_name, role, password)
    click.echo(f"Cuenta creada: {username} ({role})")


@users.command("passwd")
@click.argument("username")
@click.password_option("--password", help="Nueva contraseña (se pide si no se da).")
@click.pass_context
def users_passwd(ctx: click.Context, username: str, password: str) -> None:
    """Cambia la contraseña (y desbloquea la cuenta)."""
    from mailflow.ops.runcmd import prepare
    from mailflow.web.users import set_password

    app = prepare(settings_of(ctx))
    with app.database.session() as session:
        set_password(session, username, password)
    click.echo(f"Contraseña actualizada: {username}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """Lista las cuentas."""
    from mailflow.ops.runcmd import open_existing
    from mailflow.web.users import list_users

    app = open_existing(settings_of(ctx))
    with app.database.session(readonly=True) as session:
        for user in list_users(session):
            state = "activa" if user.active else "desactivada"
            click.echo(f"{user.username:16} {user.role:8} {state:12} {user.full_name}")


@click.group()
def outbox() -> None:
    """Respuestas no entregadas: listar y reenviar."""


@outbox.command("list")
@click.pass_context
def outbox_list(ctx: click.Context) -> None:
    """Lista las respuestas que fallaron o esperan reintento."""
    from mailflow.ops.runcmd import prepare
    from mailflow.runners.outbox import undelivered

    app = prepare(settings_of(ctx))
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
    from mailflow.ops.runcmd import prepare
    from mailflow.runners.outbox import resend

    if retry_all == bool(ids):
        raise click.UsageError("indique los números de las respuestas o --all (no ambos)")
    app = prepare(settings_of(ctx))
    with app.database.session() as session:
        done = resend(session, None if retry_all else ids, actor="operador (CLI)", now=_now())
    click.echo(f"{len(done)} respuesta(s) en cola de nuevo: {', '.join(map(str, done)) or '—'}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@click.group()
def policy() -> None:
    """La política de la institución: reglas, máquinas de estados y plantillas."""


@policy.command("check")
@click.argument(
    "directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.pass_context
def policy_check(ctx: click.Context, directory: Path | None) -> None:
    """Valida la política de DIR (o la configurada); cada problema como `archivo:línea: mensaje`."""
    from mailflow.ops.policy_check import check_policy, policy_settings

    settings = settings_of(ctx)
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


GROUPS: tuple[click.Group, ...] = (calendar, keys, registry, users, outbox, policy)
"""The groups `mailflow.cli` adds to the root group."""
