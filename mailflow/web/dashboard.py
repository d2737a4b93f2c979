"""Managers' pages: the /panel dashboard with charts, overdue/due-soon lists, CSV and PDF reports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.cases.machines import load_machines
from mailflow.clock.calendarios import default_calendar
from mailflow.config import Settings
from mailflow.intake.catalogue import load_catalogue
from mailflow.intake.fields import load_field_vocabulary
from mailflow.reports import metrics
from mailflow.reports.export import Labels, percent, sla_csv, sla_pdf
from mailflow.reports.metrics import AGE_BUCKETS, Summary
from mailflow.reports.pdf_charts import month_label
from mailflow.web import WebContext
from mailflow.web.auth import require_role
from mailflow.web.charts import Series, legend, stacked_bars
from mailflow.web.pages import now as clock
from mailflow.web.pages import render

MANAGERS = ("manager", "admin")
OK, LATE, BLUE = "#2f855a", "#c8102e", "#2563eb"
AGE_COLOURS = ("#93c5fd", "#3b82f6", "#f59e0b", "#c8102e")


def routes(context: WebContext) -> Sequence[BaseRoute]:
    """/panel, /panel/vencidos, /panel/por-vencer, /reportes/sla.csv, /reportes/sla.pdf."""
    settings = context.settings
    cal = default_calendar(settings)  # includes rules/calendar.yaml (días no laborables)

    def summary(request: Request) -> tuple[Summary, dt.datetime]:
        local = cal.local(clock(request))
        today = local.date()
        with context.db.session(readonly=True) as session:
            result = metrics.compute(session, cal, today, settings.sla.due_soon_days)
        return result, local

    async def panel(request: Request) -> Response:
        require_role(request, *MANAGERS)
        s, _ = await run_in_threadpool(summary, request)
        labels = labels_for(settings)
        return render(
            request,
            "dashboard.html",
            section="panel",
            s=s,
            labels=labels,
            percent=percent,
            charts=charts(s, labels),
            buckets=AGE_BUCKETS,
            by_tramite=s.compliance_by_tramite(),
            month_label=month_label,
        )

    async def pending(request: Request) -> Response:
        require_role(request, *MANAGERS)
        s, _ = await run_in_threadpool(summary, request)
        overdue = request.url.path.endswith("vencidos")
        return render(
            request,
            "dashboard_list.html",
            section="panel",
            s=s,
            items=s.overdue if overdue else s.due_soon,
            overdue=overdue,
            labels=labels_for(settings),
            due_soon_days=settings.sla.due_soon_days,
        )

    async def csv_report(request: Request) -> Response:
        require_role(request, *MANAGERS)
        s, _ = await run_in_threadpool(summary, request)
        body = "\ufeff" + sla_csv(s, labels_for(settings))  # BOM: spreadsheets read the accents
        name = f"cumplimiento-plazos-{s.today.isoformat()}.csv"
        return Response(body, media_type="text/csv; charset=utf-8", headers=_download(name))

    async def pdf_report(request: Request) -> Response:
        require_role(request, *MANAGERS)
        s, local = await run_in_threadpool(summary, request)
        generated = local.strftime("%d/%m/%Y %H:%M")
        labels = labels_for(settings)
        pdf = await run_in_threadpool(sla_pdf, s, labels, settings.institution.name, generated)
        name = f"reporte-plazos-{s.today.isoformat()}.pdf"
        return Response(pdf, media_type="application/pdf", headers=_download(name))

    return [
        Route("/panel", panel, methods=["GET"], name="panel"),
        Route("/panel/vencidos", pending, methods=["GET"], name="panel_vencidos"),
        Route("/panel/por-vencer", pending, methods=["GET"], name="panel_por_vencer"),
        Route("/reportes/sla.csv", csv_report, methods=["GET"], name="reporte_csv"),
        Route("/reportes/sla.pdf", pdf_report, methods=["GET"], name="reporte_pdf"),
    ]


def charts(s: Summary, labels: Labels) -> dict[str, object]:
    """The three SVG charts of the dashboard and their legends."""
    months = s.compliance_by_month()
    compliance = [
        Series("En plazo", OK, [c.on_time for c in months]),
        Series("Fuera de plazo", LATE, [c.late for c in months]),
    ]
    states = list(s.backlog)
    backlog = [
        Series(f"{bucket} días hábiles", colour, [s.backlog[st][i] for st in states])
        for i, (bucket, colour) in enumerate(zip(AGE_BUCKETS, AGE_COLOURS, strict=True))
    ]
    volume = [Series("Solicitudes", BLUE, [n for _, n in s.volume])]
    return {
        "compliance": stacked_bars(
            [month_label(c.month) for c in months],
            compliance,
            title="Cumplimiento de plazos por mes",
        ),
        "compliance_legend": legend(compliance),
        "backlog": stacked_bars(
            [labels.state(st) for st in states], backlog, title="Pendientes por estado y antigüedad"
        ),
        "backlog_legend": legend(backlog),
        "volume": stacked_bars(
            [d.strftime("%d/%m") for d, _ in s.volume],
            volume,
            height=180,
            title="Solicitudes recibidas por día",
            width=1280,
            label_every=5,
        ),
    }


def labels_for(settings: Settings) -> Labels:
    """Procedure and state names from the installation's definitions (cached per directory)."""
    return _labels(settings.rules_dir, settings.state_machines_dir, settings.templates_dir)


@lru_cache(maxsize=8)
def _labels(rules: Path, machines: Path, templates: Path) -> Labels:
    catalogue = load_catalogue(rules, load_field_vocabulary(rules / "fields.yaml").ids())
    return Labels.build(catalogue, load_machines(machines, templates))


def _download(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
