"""Overview, Topics, Topic, Journeys and Topic map: read-only pages over the published marts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, request

from turret.ui import charts, marts
from turret.ui.filters import FilterError, Filters, parse

bp = Blueprint("pages", __name__)


def reader() -> marts.MartsReader:
    return current_app.extensions["turret_marts"]


def scope() -> tuple[Filters, dict[str, Any]]:
    """The request's filters with project and field filled in, and what the filter bar offers."""
    f = marts.default_scope(reader(), parse(request.args))
    context = {
        "filters": f,
        "projects": marts.projects(reader()),
        "fields": marts.text_fields(reader(), f.project_id),
        "options": marts.filter_options(reader(), f.project_id),
    }
    return f, context


def _int_arg(name: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FilterError(f"{name}: {raw[:20]!r} is not a topic id") from None


@bp.get("/")
def overview():
    f, context = scope()
    data = marts.overview(reader(), f)
    figure = charts.time_series(data["series"], "day",
                                [("events", "Events"), ("sessions", "Sessions"), ("users", "Users")])
    top = charts.bars([r["label"] for r in data["top"]], [r["events"] for r in data["top"]])
    return render_template("overview.html", page="overview", data=data, activity=charts.to_json(figure),
                           top_chart=charts.to_json(top), **context)


@bp.get("/topics")
def topics():
    f, context = scope()
    data = marts.topic_table(reader(), f)
    return render_template("topics.html", page="topics", data=data, sparkline=charts.sparkline_points,
                           **context)


@bp.get("/topics/<int(signed=True):topic_id>")
def topic(topic_id: int):
    f, context = scope()
    try:
        data = marts.topic_detail(reader(), f, topic_id)
    except marts.NotFound as exc:
        abort(404, description=str(exc))
    trend = charts.time_series(data["trend"], "day", [("events", "Events")], height=240)
    conversions = data["conversions"]
    conversions_chart = (charts.to_json(charts.conversions(conversions["daily"]))
                         if conversions and conversions["daily"] else None)
    return render_template("topic.html", page="topics", data=data, trend=charts.to_json(trend),
                           conversions_chart=conversions_chart, **context)


@bp.get("/journeys")
def journeys():
    f, context = scope()
    journey_scope = request.args.get("scope", "session")
    if journey_scope not in ("session", "user"):
        raise FilterError("scope: use session or user")
    from_topic, to_topic = _int_arg("from"), _int_arg("to")
    data = marts.journeys(reader(), f, journey_scope, from_topic, to_topic)
    return render_template("journeys.html", page="journeys", data=data, scope=journey_scope,
                           from_topic=from_topic, to_topic=to_topic,
                           topic_choices=marts.topic_choices(reader(), f),
                           sankey=charts.to_json(charts.sankey(data["flows"])) if data["flows"] else None,
                           **context)


@bp.get("/map")
def topic_map():
    f, context = scope()
    points = marts.topic_map(reader(), f)
    return render_template("topic_map.html", page="map", points=points,
                           figure=charts.to_json(charts.topic_map(points)) if points else None, **context)
