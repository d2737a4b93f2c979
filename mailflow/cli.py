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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print a clear message and exit 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="mailflow", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrumpido.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MailflowError as exc:
        click.echo(f"mailflow: {exc}", err=True)
        sys.exit(2)
