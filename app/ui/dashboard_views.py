"""UI page: the tenant dashboard, its figures drawn on the server as inline SVG charts.

The headline figures are the metrics API's own (``tenant_metrics``), so the page and ``GET /metrics``
never disagree; ``dashboard_data`` adds what the API does not break down (time, per-severity MTTR,
outcomes, queue age). Each chart comes with the same numbers as a table, for people who cannot see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from app.metrics.service import FINISHED, UNKNOWN, tenant_metrics
from app.ui import dashboard_data as data
from app.ui.charts import Series, bar_chart, column_chart, data_table, duration, line_chart, number, percent
from app.ui.deps import ViewerPage
from app.ui.render import render

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)

SEVERITY_COLORS = {"CRITICAL": "#8e1b10", "HIGH": "#c4432b", "MEDIUM": "#9a6700", "LOW": "#0b5cad",
                   UNKNOWN: "#8c959f"}  # fmt: skip

TIME_UNITS = (("Days", 86400.0), ("Hours", 3600.0), ("Minutes", 60.0), ("Seconds", 1.0))
"""The MTTR axis is in the largest unit the longest mean fills at least twice."""


@dataclass(frozen=True)
class Panel:
    """One chart of the dashboard: its heading, the SVG, the table of its numbers and a short note."""

    heading: str
    chart: Markup
    table: Markup
    note: str


@dataclass(frozen=True)
class Figure:
    """A headline number with what it means."""

    label: str
    value: str
    detail: str


def _share(part: int, whole: int) -> str:
    return f"{part} ({percent(part / whole)})" if whole else str(part)


def _volume(activity: data.Activity) -> Panel:
    timeline = activity.received
    unit = timeline.unit
    series = [Series(name, values, SEVERITY_COLORS.get(name)) for name, values in timeline.series.items()]
    totals = timeline.totals()
    span = "per hour" if unit == "hour" else f"per day, last {data.WINDOW_DAYS} days"
    desc = f"Exceptions received {span}, stacked by severity; {sum(totals)} in all."
    chart = column_chart("Volume over time", timeline.labels, series, desc=desc,
                         x_label=f"{unit.title()} (UTC)", y_label="Exceptions received")  # fmt: skip
    names = list(timeline.series)
    rows: list[list[Any]] = [
        [label, *(timeline.series[name][i] for name in names), totals[i]]
        for i, label in enumerate(timeline.full_labels)
    ]
    rows.append(["Total", *(sum(timeline.series[name]) for name in names), sum(totals)])
    table = data_table(f"Exceptions received {span}", [unit.title(), *names, "Total"], rows)
    return Panel("Volume over time", chart, table, desc)


def _categories(heading: str, counts: dict[str, int], what: str, order: Any = None) -> Panel:
    items = sorted(counts.items(), key=order or (lambda item: (-item[1], item[0])))
    total = sum(counts.values())
    desc = f"Exceptions per {what}; {len(items)} {what} value(s), {total} exceptions."
    chart = bar_chart(heading, items, desc=desc, axis_label="Exceptions",
                      value_label=lambda v: _share(int(v), total))  # fmt: skip
    rows = [[name, count, percent(count / total) if total else "—"] for name, count in items]
    table = data_table(heading, [what.capitalize(), "Exceptions", "Share"], rows)
    return Panel(heading, chart, table, desc)


def _outcomes(outcomes: dict[str, int], rate: float | None) -> Panel:
    finished = sum(outcomes.values())
    desc = (f"Finished cases by outcome; auto-resolution rate {percent(rate)} "
            f"({outcomes['Auto-resolved']} of {finished} finished).")  # fmt: skip
    items = list(outcomes.items())
    chart = bar_chart("Auto-resolution", items, desc=desc, axis_label="Finished cases",
                      value_label=lambda v: _share(int(v), finished))  # fmt: skip
    rows = [[name, count, percent(count / finished) if finished else "—"] for name, count in items]
    table = data_table("Finished cases by outcome", ["Outcome", "Cases", "Share"], rows)
    return Panel("Auto-resolution rate", chart, table, desc)


def _mttr(means: dict[str, float], overall: float | None) -> Panel:
    desc = (
        "Mean time from received to resolved, over resolved cases, per severity; "
        f"overall {duration(overall)}."
    )
    longest = max(means.values(), default=0.0)
    unit, size = next((u for u in TIME_UNITS if longest >= u[1] * 2), TIME_UNITS[-1])
    scaled = [(name, seconds / size) for name, seconds in means.items()]
    chart = bar_chart("Mean time to resolution", scaled, desc=desc, axis_label=unit,
                      value_label=lambda v: duration(v * size))  # fmt: skip
    rows = [[name, duration(seconds), number(round(seconds, 1))] for name, seconds in means.items()]
    table = data_table("Mean time to resolution per severity", ["Severity", "Mean time", "Seconds"], rows)
    return Panel("Mean time to resolution (MTTR)", chart, table, desc)


def _queue(queue: data.QueueAge) -> Panel:
    desc = (f"{queue.pending} approval(s) waiting; oldest {duration(queue.oldest_seconds)}, median "
            f"{duration(queue.median_seconds)}; {queue.overdue} past the deadline.")  # fmt: skip
    chart = bar_chart("Approval queue age", queue.buckets, desc=desc, axis_label="Approvals waiting")
    table = data_table(
        "Approvals waiting, by age", ["Waiting for", "Approvals"], [list(b) for b in queue.buckets]
    )
    return Panel("Approval queue age", chart, table, desc)


def _escalations(activity: data.Activity, escalations: int, finished: int) -> Panel:
    timeline = activity.received
    received = timeline.totals()
    rate = escalations / finished if finished else None
    desc = (f"Exceptions received and escalated per {timeline.unit}; {escalations} escalated in all, "
            f"{percent(rate)} of finished cases.")  # fmt: skip
    series = [Series("Received", received, "#0b5cad"), Series("Escalated", activity.escalated, "#9a6700")]
    chart = line_chart("Escalations", timeline.labels, series, desc=desc,
                       x_label=f"{timeline.unit.title()} (UTC)", y_label="Exceptions")  # fmt: skip
    rows: list[list[Any]] = [
        [label, received[i], activity.escalated[i]] for i, label in enumerate(timeline.full_labels)
    ]
    rows.append(["Total", sum(received), sum(activity.escalated)])
    table = data_table(
        f"Received and escalated per {timeline.unit}", [timeline.unit.title(), "Received", "Escalated"], rows
    )
    return Panel("Escalations", chart, table, desc)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, page: ViewerPage) -> HTMLResponse:
    now = datetime.now(UTC)
    dialect = page.services.db.engine.dialect.name
    async with page.services.db.session() as session:
        metrics = await tenant_metrics(session, page.tenant_id, dialect=dialect)
        if not metrics["exceptionCount"]:
            return render(request, "dashboard.html", page, active="dashboard", metrics=metrics, panels=[],
                          figures=[], now=now)  # fmt: skip
        activity = await data.activity(session, page.tenant_id, dialect=dialect, now=now)
        means = await data.mttr_by_severity(session, page.tenant_id, dialect=dialect)
        outcomes = await data.finished_outcomes(session, page.tenant_id)
        queue = await data.queue_age(session, page.tenant_id, now=now)
    finished = sum(metrics["byStatus"].get(status, 0) for status in FINISHED)
    escalations = int(metrics["escalations"])
    figures = [
        Figure("Exceptions", str(metrics["exceptionCount"]), "received, in any status"),
        Figure("Auto-resolution rate", percent(metrics["autoResolutionRate"]),
               f"of {finished} finished cases"),
        Figure("MTTR", duration(metrics["mttrSeconds"]), "mean time to resolution"),
        Figure("Approvals waiting", str(metrics["pendingApprovals"]),
               f"oldest {duration(queue.oldest_seconds)}, median {duration(queue.median_seconds)}"),
        Figure("Escalations", str(escalations),
               f"{percent(escalations / finished if finished else None)} of finished cases"),
    ]  # fmt: skip
    severity = {
        name: metrics["bySeverity"][name] for name in sorted(metrics["bySeverity"], key=data.severity_key)
    }
    panels = [
        _volume(activity),
        _categories("By type", metrics["byType"], "type"),
        _categories("By severity", severity, "severity", order=lambda item: data.severity_key(item[0])),
        _outcomes(outcomes, metrics["autoResolutionRate"]),
        _mttr(means, metrics["mttrSeconds"]),
        _queue(queue),
        _escalations(activity, escalations, finished),
    ]
    return render(request, "dashboard.html", page, active="dashboard", metrics=metrics, panels=panels,
                  figures=figures, now=now)  # fmt: skip
