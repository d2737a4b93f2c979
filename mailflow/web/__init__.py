"""The web application: a Starlette app assembled from route groups (public pages, staff desk)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jinja2
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from mailflow.app import App
from mailflow.config import Settings
from mailflow.store.db import Database


@dataclass(frozen=True)
class WebContext:
    """What every route group needs: settings, database, the web templates and the one `App`.

    `app` is the installation the web serves (catalogue, machines, document templates,
    reader): the same object the service runs with when the service starts the web, so
    definitions are loaded once per process. Routes reach it with `web.engine.app_of`.
    """

    settings: Settings
    db: Database
    templates: jinja2.Environment
    app: App


RouteGroup = Callable[[WebContext], Sequence[BaseRoute]]


def web_templates(settings: Settings) -> jinja2.Environment:
    """Jinja2 environment over <templates_dir>/web, HTML autoescaped."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.templates_dir / "web"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )


def default_groups() -> list[RouteGroup]:
    """The route groups of a full installation (the staff desk adds its own here)."""
    from mailflow.web import (
        accounts,
        auth,
        cases,
        dashboard,
        desk,
        panel,
        registry,
        registry_browse,
        users_admin,
        verify,
        workload,
    )

    return [
        verify.routes,
        auth.routes,
        desk.routes,
        cases.routes,
        dashboard.routes,
        registry.routes,
        accounts.routes,
        workload.routes,
        panel.routes,
        registry_browse.routes,
        users_admin.routes,
    ]


def create_app(
    settings: Settings,
    db: Database,
    groups: Sequence[RouteGroup] | None = None,
    *,
    app: App | None = None,
) -> Starlette:
    """Build the Starlette web app from `groups` (default: default_groups()).

    `app` is the installation to serve (the service's own `App`); without it one is built
    here from `settings`, on the web's database `db`. Either way it is the only `App` of the
    web, kept in `WebContext.app` on `starlette_app.state.mailflow`.
    """
    if app is None:
        app = App(settings)
        app.database = db  # the web's database: never a second engine on the same URL
    context = WebContext(settings, db, web_templates(settings), app)
    routes: list[BaseRoute] = []
    for group in default_groups() if groups is None else groups:
        routes.extend(group(context))
    from mailflow.web.middleware import desk_middleware, error_handlers, static_mount

    routes.append(static_mount())
    web = Starlette(
        routes=routes,
        middleware=desk_middleware(settings),
        exception_handlers=error_handlers(),
    )
    web.state.mailflow = context
    return web
