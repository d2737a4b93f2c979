"""The period panel (/panel/cifras): figures that link to the exact list they count, the per-case
CSV of that list, and a PDF with the institution's header and "Página x de N"."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.reports import panel_figures as pf
from mailflow.store.models import Case, InboxMessage, User
from mailflow.web import WebContext
from mailflow.web.auth import require_role
from mailflow.web.charts import Series, stacked_bars
from mailflow.web.engine import app_of
from mailflow.web.pages import now, render

MANAGERS = ("manager", "admin")
CSV_HEADER = (
    "expediente", "tramite", "procedimiento", "oficina", "responsable", "estado", "solicitante",
    "dia_legal_recepcion", "vence", "entregado", "resultado",
)  # fmt: skip


def queue_backlog(session: Session, states: Collection[str]) -> int:
    """Items waiting in the exception queue now: what /bandeja counts as pending (messages
    set aside and cases in a `queue: true` state, `mailflow.web.queue.load_rows`)."""
    from mailflow.web.queue import QUEUED

    messages = session.scalar(select(func.count()).select_from(InboxMessage).where(QUEUED))
    cases = session.scalar(
        select(func.count()).select_from(Case).where(Case.state.in_(sorted(states)))
    )
    return int(messages or 0) + int(cases or 0)


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """GET /panel/cifras, /panel/lista, /reportes/expedientes.csv, /reportes/panel.pdf."""
    settings = context.settings

    def gather(request: Request) -> dict[str, Any]:
        app = app_of(request)
        cal = app.calendario
        today = cal.local(now(request)).date()
        q = request.query_params
        period = pf.Period.parse(q.get("desde"), q.get("hasta"), today)
        filters = {k: q.get(k, "") for k in pf.GROUPS}
        with context.db.session(readonly=True) as session:
            users = dict(session.execute(select(User.id, User.username)).all())
            names = dict(session.execute(select(User.username, User.full_name)).all())
            figures = pf.load(
                session, cal, app.machines, period, today, users, settings.calendar.default_office
            )
            backlog = queue_backlog(
                session, {s for m in app.machines.values() for s in m.queue_states}
            )
        figures = pf.select_figures(figures, "recibidos", filters)
        tramites = {t.id: t.name for t in app.catalogue}
        offices = {o.id: o.name for o in app.calendar_rules.offices.values()}
        states = {s.name: s.label for m in app.machines.values() for s in m.states}
        names[pf.NOBODY] = "Sin responsable"
        label = {"tramite": tramites, "oficina": offices, "responsable": names}
        return {
            "period": period,
            "figures": figures,
            "filters": filters,
            "backlog": backlog,
            "label": lambda group, value: label[group].get(value, value),
            "state_label": lambda s: states.get(s, s),
            "today": today,
        }

    def link(base: str, period: pf.Period, **extra: str) -> str:
        params = {"desde": period.start.isoformat(), "hasta": period.end.isoformat()}
        params.update({k: v for k, v in extra.items() if v})
        return f"{base}?{urlencode(params)}"

    async def cifras(request: Request) -> Response:
        require_role(request, *MANAGERS)
        g = gather(request)
        days = pf.per_day(g["figures"], g["period"])
        chart = stacked_bars(
            [d.strftime("%d/%m") for d, _ in days],
            [Series("Recibidos", "#2563eb", [n for _, n in days])],
            title="Recibidos por día legal de recepción",
            height=180,
            width=1280,
            label_every=max(1, len(days) // 12),
        )
        return render(
            request,
            "panel.html",
            section="panel",
            metrics=pf.METRICS,
            groups=pf.GROUPS,
            totals=pf.totals(g["figures"]),
            tables={by: pf.breakdown(g["figures"], by) for by in pf.GROUPS},
            chart=chart,
            chart_total=sum(n for _, n in days),
            link=lambda metric, **kw: link(
                "/panel/lista", g["period"], metrica=metric, **{**g["filters"], **kw}
            ),
            csv_link=link(
                "/reportes/expedientes.csv", g["period"], metrica="recibidos", **g["filters"]
            ),
            pdf_link=link("/reportes/panel.pdf", g["period"], **g["filters"]),
            **g,
        )

    async def lista(request: Request) -> Response:
        require_role(request, *MANAGERS)
        g = gather(request)
        metric = request.query_params.get("metrica", "recibidos")
        metric = metric if metric in pf.METRICS else "recibidos"
        rows = pf.select_figures(g["figures"], metric, {})
        return render(
            request,
            "panel_list.html",
            section="panel",
            metric=metric,
            metric_name=pf.METRICS[metric],
            rows=rows,
            csv_link=link("/reportes/expedientes.csv", g["period"], metrica=metric, **g["filters"]),
            back=link("/panel/cifras", g["period"], **g["filters"]),
            **g,
        )

    async def csv_report(request: Request) -> Response:
        require_role(request, *MANAGERS)
        g = gather(request)
        metric = request.query_params.get("metrica", "recibidos")
        rows = pf.select_figures(g["figures"], metric if metric in pf.METRICS else "recibidos", {})
        body = "\ufeff" + figures_csv(rows, g["label"], g["state_label"])
        name = f"expedientes-{metric}-{g['period'].start}-{g['period'].end}.csv"
        return Response(body, media_type="text/csv; charset=utf-8", headers=_download(name))

    async def pdf_report(request: Request) -> Response:
        require_role(request, *MANAGERS)
        from mailflow.reports.panel_pdf import panel_pdf

        g = gather(request)
        local = app_of(request).calendario.local(now(request))
        pdf = panel_pdf(
            settings.institution,
            g["period"],
            pf.totals(g["figures"]),
            {by: pf.breakdown(g["figures"], by) for by in pf.GROUPS},
            g["label"],
            g["backlog"],
            local.strftime("%d/%m/%Y %H:%M"),
        )
        name = f"panel-{g['period'].start}-{g['period'].end}.pdf"
        return Response(pdf, media_type="application/pdf", headers=_download(name))

    return [
        Route("/panel/cifras", cifras, methods=["GET"], name="panel_cifras"),
        Route("/panel/lista", lista, methods=["GET"], name="panel_lista"),
        Route("/reportes/expedientes.csv", csv_report, methods=["GET"]),
        Route("/reportes/panel.pdf", pdf_report, methods=["GET"]),
    ]


def figures_csv(rows: Sequence[pf.CaseFigure], label: Any, state_label: Any) -> str:
    """One CSV row per case (comma-separated, ISO dates), after the header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for f in rows:
        c = f.case
        result = ", ".join(
            pf.METRICS[m] for m in pf.METRICS if m in f.metrics() and m != "recibidos"
        )
        writer.writerow(
            (
                c.number,
                c.tramite,
                label("tramite", c.tramite),
                label("oficina", f.office),
                label("responsable", f.assignee),
                state_label(c.state),
                c.applicant_name or c.applicant_email or "",
                c.legal_receipt_day.isoformat(),
                c.due_date.isoformat() if c.due_date else "",
                f.delivered_on.isoformat() if f.delivered_on else "",
                result,
            )
        )
    return out.getvalue()


def _download(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
