"""The `mailflow` command line: the root group, its single commands and the entry point `main`.

The command groups (calendar, keys, registry, users, outbox, policy) are in `mailflow.commands`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from mailflow.app import App
from mailflow.commands import GROUPS, settings_of
from mailflow.errors import MailflowError


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
    from mailflow.ops.checking import check_files, render_table

    settings = settings_of(ctx)
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


@cli.command()
@click.option(
    "--once", is_flag=True, help="Procesa todo lo pendiente, envía la bandeja de salida y termina."
)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option("--no-web", is_flag=True, help="No inicia la mesa de partes web.")
@click.pass_context
def run(ctx: click.Context, once: bool, workers: int, no_web: bool) -> None:
    """El servicio: ingreso de correo, proceso, plazos, envío y web."""
    from mailflow.ops.runcmd import run as run_service

    settings = settings_of(ctx)
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

    from mailflow.ops.runcmd import start
    from mailflow.web import create_app

    try:
        app = start(settings_of(ctx))
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
    from mailflow.ops.demo import run_demo

    sys.exit(
        run_demo(
            settings_of(ctx),
            smtp_port=smtp_port,
            web_port=web_port,
            exit_after_samples=exit_after_samples,
        )
    )


@cli.command()
@click.pass_context
def health(ctx: click.Context) -> None:
    """Estado operativo en JSON; código de salida 1 si algo requiere atención."""
    from mailflow.ops.health import health as report

    app = App(settings_of(ctx))
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


for _group in GROUPS:
    cli.add_command(_group)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print a clear message and exit 2, never a traceback."""
    from mailflow.store.filemodes import restrict_new_files

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
