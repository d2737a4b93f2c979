"""Account administration beyond create/enable: reset a password (the user sets a new one at
the next login), change a role, lift a lockout; and the page where a user changes their own."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.web import WebContext, users
from mailflow.web.auth import (
    PASSWORD_CHANGE_URL,
    ROLE_NAMES,
    home_for,
    keep_session,
    require_role,
)
from mailflow.web.csrf import checked_form
from mailflow.web.pages import flash, redirect, render
from mailflow.web.passwords import MIN_LENGTH


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """POST /usuarios/{u}/clave, /usuarios/{u}/rol, /usuarios/{u}/desbloquear; /cuenta/clave."""

    async def reset(request: Request) -> Response:
        require_role(request, "admin")
        form = await checked_form(request)
        username = str(request.path_params["username"])
        try:
            with context.db.session() as session:
                users.reset_password(session, username, str(form.get("password", "")))
            flash(request, f"Contraseña de {username} restablecida: deberá cambiarla al entrar.")
        except users.UserError as exc:
            flash(request, f"No se restableció la contraseña: {exc}.", "error")
        return redirect("/usuarios")

    async def role(request: Request) -> Response:
        admin = require_role(request, "admin")
        form = await checked_form(request)
        username = str(request.path_params["username"])
        new = str(form.get("role", ""))
        if username == admin.username and new != "admin":
            flash(request, "No puede quitarse a sí mismo el rol de administración.", "error")
            return redirect("/usuarios")
        try:
            with context.db.session() as session:
                users.set_role(session, username, new)
            flash(request, f"{username}: rol cambiado a {ROLE_NAMES.get(new, new)}.")
        except users.UserError as exc:
            flash(request, f"No se cambió el rol: {exc}.", "error")
        return redirect("/usuarios")

    async def unlock(request: Request) -> Response:
        require_role(request, "admin")
        await checked_form(request)
        username = str(request.path_params["username"])
        try:
            with context.db.session() as session:
                users.unlock(session, username)
            flash(request, f"Cuenta {username} desbloqueada.")
        except users.UserError as exc:
            flash(request, str(exc), "error")
        return redirect("/usuarios")

    async def own_page(request: Request) -> Response:
        user = require_role(request)
        return render(
            request, "password.html", forced=user.must_change_password, min_length=MIN_LENGTH
        )

    async def own_change(request: Request) -> Response:
        user = require_role(request)
        form = await checked_form(request)
        new, again = str(form.get("new", "")), str(form.get("again", ""))
        try:
            if new != again:
                raise users.UserError("las dos contraseñas nuevas no coinciden")
            with context.db.session() as session:
                changed = users.change_own_password(
                    session, user.username, str(form.get("current", "")), new
                )
                version = changed.session_version
        except users.UserError as exc:
            flash(request, f"No se cambió la contraseña: {exc}.", "error")
            return redirect(PASSWORD_CHANGE_URL)
        keep_session(request, version)  # other sessions of the account end (issue 14b)
        flash(request, "Contraseña cambiada.")
        return redirect(home_for(user.role))

    return [
        Route("/usuarios/{username}/clave", reset, methods=["POST"]),
        Route("/usuarios/{username}/rol", role, methods=["POST"]),
        Route("/usuarios/{username}/desbloquear", unlock, methods=["POST"]),
        Route(PASSWORD_CHANGE_URL, own_page, methods=["GET"], name="cambiar_clave"),
        Route(PASSWORD_CHANGE_URL, own_change, methods=["POST"]),
    ]
