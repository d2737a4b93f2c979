"""Browse the applicant registry: search and one person's record with their cases (desk roles
read; managers also import, on /registro). Sensitive columns follow rules/vulnerabilidad.yaml."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.store.audit import record
from mailflow.store.models import Applicant, Case
from mailflow.vocabulary import AuditKind
from mailflow.web import WebContext
from mailflow.web.auth import require_role
from mailflow.web.engine import app_of
from mailflow.web.pages import now, render

DESK_ROLES = ("staff", "manager", "admin")
PAGE_SIZE = 50
SENSITIVE_KEYS = ("vulnerabilidad",)


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /registro/personas (search) and GET /registro/personas/{id}."""

    async def search(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        text = request.query_params.get("q", "").strip()
        stmt = select(Applicant)
        if text:
            like = f"%{text}%"
            stmt = stmt.where(
                or_(
                    Applicant.full_name.ilike(like),
                    Applicant.document_number.ilike(like),
                    Applicant.carne_extranjeria.ilike(like),
                    Applicant.email.ilike(like),
                )
            )
        with context.db.session(readonly=True) as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            people = session.scalars(stmt.order_by(Applicant.full_name).limit(PAGE_SIZE)).all()
        return render(
            request, "registry_people.html", section="personas", people=people, total=total,
            q=text, may_import=user.role in ("manager", "admin"), page_size=PAGE_SIZE,
        )  # fmt: skip

    async def person(request: Request) -> Response:
        user = require_role(request, *DESK_ROLES)
        app = app_of(request)
        detailed = app.vulnerability.may_see_details(user.role)
        with context.db.session() as session:
            applicant = session.get(Applicant, int(request.path_params["id"]))
            if applicant is None:
                raise HTTPException(404, "No existe esa persona en el registro.")
            keys = [c for c in (applicant.carne_extranjeria, applicant.document_number) if c]
            conditions: list[Any] = [Case.applicant_document.in_(keys)] if keys else []
            if applicant.email:
                conditions.append(Case.applicant_email == applicant.email.lower())
            cases = (
                session.scalars(
                    select(Case).where(or_(*conditions)).order_by(Case.received_at)
                ).all()
                if conditions
                else []
            )
            data = {
                k: v
                for k, v in (applicant.data or {}).items()
                if detailed or k not in SENSITIVE_KEYS
            }
            hidden = not detailed and any(k in (applicant.data or {}) for k in SENSITIVE_KEYS)
            if detailed and any(k in (applicant.data or {}) for k in SENSITIVE_KEYS):
                record(
                    session, AuditKind.VULNERABILIDAD_VISTA,
                    f"Consulta del registro de {applicant.full_name} con datos de vulnerabilidad.",
                    at=now(request), actor=user.actor, data={"applicant": applicant.id},
                )  # fmt: skip
            return render(
                request, "registry_person.html", section="personas", person=applicant,
                data=data, hidden=hidden, cases=cases,
            )  # fmt: skip

    return [
        Route("/registro/personas", search, methods=["GET"], name="personas"),
        Route("/registro/personas/{id:int}", person, methods=["GET"], name="persona"),
    ]
