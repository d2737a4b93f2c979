"""reportlab charts of the PDF report: compliance per month, backlog by age, daily volume."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.units import mm

from mailflow.reports.metrics import AGE_BUCKETS, Compliance

INK = colors.HexColor("#1f2933")
GREY = colors.HexColor("#5f6b76")
LINE = colors.HexColor("#dde3e8")
OK = colors.HexColor("#2f855a")
LATE = colors.HexColor("#c8102e")
BLUE = colors.HexColor("#2563eb")
AGE_COLOURS = ("#93c5fd", "#3b82f6", "#f59e0b", "#c8102e")
MONTHS_ES = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")


def month_label(month: str) -> str:
    """'2026-02' → 'feb 2026'."""
    year, num = month.split("-")
    return f"{MONTHS_ES[int(num) - 1]} {year}"


def compliance_chart(months: Sequence[Compliance], width: float = 170 * mm) -> Drawing:
    """Grouped bars per month: within term (green) and late (red)."""
    drawing = Drawing(width, 60 * mm)
    if not any(c.total for c in months):
        drawing.add(
            String(
                width / 2,
                30 * mm,
                "Sin expedientes con plazo vencido en el periodo",
                textAnchor="middle",
                fontSize=9,
                fillColor=GREY,
            )
        )
        return drawing
    chart = _bar_chart(width, [[c.on_time for c in months], [c.late for c in months]])
    chart.categoryAxis.categoryNames = [month_label(c.month) for c in months]
    for i, colour in enumerate((OK, LATE)):
        chart.bars[i].fillColor = colour
    drawing.add(chart)
    drawing.add(_legend(width, [(OK, "En plazo"), (LATE, "Fuera de plazo")]))
    return drawing


def backlog_chart(
    backlog: dict[str, list[int]], state_label: Callable[[str], str], width: float = 170 * mm
) -> Drawing:
    """Stacked bars: one per state, stacked by age bucket."""
    drawing = Drawing(width, 62 * mm)
    if not backlog:
        drawing.add(
            String(
                width / 2,
                30 * mm,
                "No hay expedientes pendientes",
                textAnchor="middle",
                fontSize=9,
                fillColor=GREY,
            )
        )
        return drawing
    states = list(backlog)
    data = [[backlog[s][i] for s in states] for i in range(len(AGE_BUCKETS))]
    chart = _bar_chart(width, data)
    chart.categoryAxis.style = "stacked"
    chart.barLabelFormat = None
    chart.categoryAxis.categoryNames = [_short(state_label(s), 30) for s in states]
    for i, colour in enumerate(AGE_COLOURS):
        chart.bars[i].fillColor = colors.HexColor(colour)
    drawing.add(chart)
    legend = [
        (colors.HexColor(c), f"{b} días") for c, b in zip(AGE_COLOURS, AGE_BUCKETS, strict=True)
    ]
    drawing.add(_legend(width, legend))
    return drawing


def volume_chart(volume: Sequence[tuple[dt.date, int]], width: float = 170 * mm) -> Drawing:
    """One bar per calendar day."""
    drawing = Drawing(width, 55 * mm)
    chart = _bar_chart(width, [[n for _, n in volume]], height=40 * mm)
    chart.categoryAxis.categoryNames = [
        d.strftime("%d/%m") if i % 5 == 0 else "" for i, (d, _) in enumerate(volume)
    ]
    chart.bars[0].fillColor = BLUE
    chart.barSpacing = 1
    drawing.add(chart)
    return drawing


def _bar_chart(width: float, data: list[list[int]], height: float = 42 * mm) -> VerticalBarChart:
    chart = VerticalBarChart()
    chart.x, chart.y = 12 * mm, 12 * mm
    chart.width, chart.height = width - 16 * mm, height
    chart.data = data
    chart.strokeColor = None
    top = max([sum(col) for col in zip(*data, strict=True)] + [1])
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = top + max(1, top // 8)
    chart.valueAxis.valueStep = max(1, (top + 4) // 5)
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labels.fillColor = GREY
    chart.valueAxis.strokeColor = LINE
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = LINE
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.fillColor = INK
    chart.categoryAxis.strokeColor = LINE
    chart.categoryAxis.labels.boxAnchor = "n"
    chart.barLabelFormat = lambda v: str(int(v)) if v else ""
    chart.barLabels.fontSize = 6
    chart.barLabels.nudge = 5
    chart.groupSpacing = 6
    return chart


def _legend(width: float, items: list[tuple[colors.Color, str]]) -> Legend:
    legend = Legend()
    legend.x, legend.y = width - 4 * mm, 60 * mm - 3 * mm
    legend.alignment = "right"
    legend.boxAnchor = "ne"
    legend.columnMaximum = 1
    legend.fontSize = 7
    legend.dx = legend.dy = 6
    legend.deltax = 58
    legend.colorNamePairs = items
    return legend


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
