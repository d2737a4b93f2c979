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
@click.option("--explain", is_flag=True, help="Explica el cómputo del plazo.")
@click.pass_context
def calendar_due(ctx: click.Context, received: str, days: int, explain: bool) -> None:
    """Imprime la fecha de vencimiento (AAAA-MM-DD)."""
    try:
        when = dt.datetime.fromisoformat(received)
    except ValueError as exc:
        raise click.BadParameter(
            f"fecha ISO inválida: {received!r}", param_hint="--received"
        ) from exc
    app = App(_settings(ctx))
    click.echo(app.calendario.due_date(when, days).isoformat())
    if explain:
        for line in app.calendario.explain_due(when, days):
            click.echo(f"  {line}", err=True)


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

    from mailflow.runcmd import prepare
    from mailflow.web import create_app

    app = prepare(_settings(ctx))
    web = app.settings.web
    uvicorn.run(
        create_app(app.settings, app.database),
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
    from mailflow.runcmd import prepare
    from mailflow.users import list_users

    app = prepare(_settings(ctx))
    with app.database.session(readonly=True) as session:
        for user in list_users(session):
            state = "activa" if user.active else "desactivada"
            click.echo(f"{user.username:16} {user.role:8} {state:12} {user.full_name}")


@cli.command()
@click.pass_context
def health(ctx: click.Context) -> None:
    """Estado operativo en JSON; código de salida 1 si algo requiere atención."""
    from mailflow.health import health as report

    app = App(_settings(ctx))
    result = report(app, dt.datetime.now(dt.UTC))
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    sys.exit(0 if result["ok"] else 1)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print a clear message and exit 2, never a traceback."""
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
