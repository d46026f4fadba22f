"""The dashboard: throughput (tasks finished per minute), outcomes and dial lateness over the
last hour, as inline SVG charts rendered here, their fragment polled every 10 s by htmx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from ringback.console.charts import colour, lines, stacked_bars
from ringback.console.render import Console, ConsoleRoute, page
from ringback.service.dashboard import DashboardView

router = APIRouter(prefix="/ui/dashboard", route_class=ConsoleRoute, include_in_schema=False)
#: results in the order charts stack them; others follow by name
RESULT_ORDER = ("success", "failed", "canceled", "none")


def charts(view: DashboardView) -> dict[str, Any]:
    start = view.since
    end = view.since + timedelta(minutes=len(view.minutes))
    series = [r for r in RESULT_ORDER if r in view.outcomes]
    series += sorted(r for r in view.outcomes if r not in RESULT_ORDER)
    legend = [(name, colour(name, k), view.outcomes[name]) for k, name in enumerate(series)]
    late_avg = [m.late_avg_s for m in view.minutes]
    late_max = [m.late_max_s for m in view.minutes]
    known = [v for v in late_max if v is not None]
    return {
        "view": view, "legend": legend,
        "throughput": stacked_bars(
            "tasks finished per minute", [{"finished": m.finished} for m in view.minutes],
            ["finished"], start, end,
        ),
        "outcomes": stacked_bars(
            "results per minute", [m.results for m in view.minutes], series, start, end
        ),
        "lateness": lines(
            "dial lateness per minute (seconds)", {"average": late_avg, "largest": late_max},
            start, end, unit=" s",
        ),
        "late_max": max(known) if known else None,
        "per_minute": view.finished / max(len(view.minutes), 1),
    }  # fmt: skip


async def _context(request: Request) -> tuple[Any, dict[str, Any]]:
    console = Console.of(request)
    session = await console.session(request)
    view = await console.services.dashboard.last_hour(session.client_id)
    return session, charts(view)


@router.get("", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    session, context = await _context(request)
    return page(request, "dashboard.html", context, session=session)


@router.get("/charts", response_class=HTMLResponse)
async def dashboard_charts(request: Request) -> Response:
    session, context = await _context(request)
    return page(request, "_dashboard_charts.html", context, session=session)
