"""Admin page /usuarios: list accounts, create one, enable or disable it."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.store.models import ROLES, User
from mailflow.web import WebContext
from mailflow.web.auth import ROLE_NAMES, require_role
from mailflow.web.csrf import checked_form
from mailflow.web.pages import flash, redirect, render
from mailflow.web.users import UserError, add_user, list_users, set_active


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET/POST /usuarios and POST /usuarios/{username}/estado (admin only)."""

    def all_users() -> list[User]:
        with context.db.session(readonly=True) as session:
            return list(list_users(session))

    async def users_page(request: Request) -> Response:
        require_role(request, "admin")
        users = await run_in_threadpool(all_users)
        return render(
            request,
            "users.html",
            section="usuarios",
            users=users,
            roles=ROLES,
            role_names=ROLE_NAMES,
        )

    async def create(request: Request) -> Response:
        require_role(request, "admin")
        form = await checked_form(request)

        def create_user() -> str:  # argon2 and the write, in a worker thread
            with context.db.session() as session:
                user = add_user(
                    session,
                    str(form.get("username", "")),
                    str(form.get("full_name", "")),
                    str(form.get("role", "")),
                    str(form.get("password", "")),
                )
                return user.username

        try:
            username = await run_in_threadpool(create_user)
            flash(request, f"Usuario {username} creado.")
        except UserError as exc:
            flash(request, f"No se creó el usuario: {exc}.", "error")
        return redirect("/usuarios")

    async def toggle(request: Request) -> Response:
        admin = require_role(request, "admin")
        form = await checked_form(request)
        username = str(request.path_params["username"])
        active = form.get("active") == "1"
        if username == admin.username and not active:
            flash(request, "No puede desactivar su propia cuenta.", "error")
            return redirect("/usuarios")

        def store() -> None:
            with context.db.session() as session:
                set_active(session, username, active)

        try:
            await run_in_threadpool(store)
            flash(request, f"Usuario {username} {'activado' if active else 'desactivado'}.")
        except UserError as exc:
            flash(request, str(exc), "error")
        return redirect("/usuarios")

    return [
        Route("/usuarios", users_page, methods=["GET"], name="usuarios"),
        Route("/usuarios", create, methods=["POST"]),
        Route("/usuarios/{username}/estado", toggle, methods=["POST"]),
    ]
