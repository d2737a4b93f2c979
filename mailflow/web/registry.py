"""Registry pages (manager/admin): upload a spreadsheet → map columns → preview → import → report."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.registry import applicants as registry
from mailflow.store.models import Applicant
from mailflow.web import WebContext
from mailflow.web.auth import require_role
from mailflow.web.csrf import checked_form
from mailflow.web.pages import render

ROLES = ("manager", "admin")
MAX_UPLOAD = 20 * 1024 * 1024


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /registro and the POST steps /registro/subir, /registro/vista-previa, /registro/importar."""
    folder = context.settings.data_dir / "registro"

    def page(request: Request, step: str, status: int = 200, **values: object) -> Response:
        with context.db.session(readonly=True) as session:
            count = session.scalar(select(func.count()).select_from(Applicant)) or 0
        return render(request, "registry.html", status=status, section="registro", step=step,
                      count=count, targets=registry.TARGET_LABELS, **values)  # fmt: skip

    def import_all(plan: registry.Plan) -> registry.ImportReport:
        with context.db.session() as session:
            return registry.import_plan(session, plan)

    async def start(request: Request) -> Response:
        require_role(request, *ROLES)
        return page(request, "subir")

    async def upload(request: Request) -> Response:
        require_role(request, *ROLES)
        form = await checked_form(request)
        file = form.get("archivo")
        if not isinstance(file, UploadFile) or not file.filename:
            return page(request, "subir", 400, error="Elija un archivo CSV o Excel (.xlsx).")
        data = await file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return page(request, "subir", 400, error="El archivo supera los 20 MB.")
        try:
            sheet = await run_in_threadpool(registry.read_sheet, data, file.filename)
        except registry.RegistryError as exc:
            return page(request, "subir", 400, error=str(exc))
        token = secrets.token_hex(16) + Path(file.filename).suffix.lower()[:6]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / token).write_bytes(data)
        mapping = registry.suggest_mapping(sheet.headers)
        return page(
            request, "mapear", token=token, sheet=sheet, mapping=mapping, name=file.filename
        )

    async def step(request: Request) -> Response:
        require_role(request, *ROLES)
        form = await checked_form(request)
        token = str(form.get("token", ""))
        path = folder / token
        if not token.isascii() or "/" in token or not path.is_file():
            return page(
                request, "subir", 400, error="El archivo ya no está disponible: súbalo de nuevo."
            )
        name = str(form.get("nombre", token))
        sheet = await run_in_threadpool(registry.read_sheet, path.read_bytes(), token)
        mapping = _mapping(form, len(sheet.headers))
        try:
            plan = registry.plan_import(sheet, mapping)
        except registry.RegistryError as exc:
            return page(request, "mapear", 400, token=token, sheet=sheet, mapping=mapping,
                        name=name, error=str(exc))  # fmt: skip
        if request.url.path.endswith("vista-previa"):
            return page(request, "previa", token=token, mapping=mapping, plan=plan, name=name)
        report = await run_in_threadpool(import_all, plan)
        path.unlink(missing_ok=True)
        return page(request, "reporte", report=report, name=name)

    return [
        Route("/registro", start, methods=["GET"], name="registro"),
        Route("/registro/subir", upload, methods=["POST"]),
        Route("/registro/vista-previa", step, methods=["POST"]),
        Route("/registro/importar", step, methods=["POST"]),
    ]


def _mapping(form: FormData, width: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for i in range(width):
        attr = str(form.get(f"col{i}", ""))
        if attr in registry.TARGETS and attr not in out.values():
            out[i] = attr
    return out
