"""Plotly figures as plain JSON specs (plotly.js draws them in the browser; app.js finds them by id).

plotly.js is served from the plotly Python package (``plotly/package_data/plotly.min.js``, MIT licence), so
the dashboard needs no network. Building the specs as dicts keeps each page's cost in its queries.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#393b79", "#637939")
# The topic map writes the labels of this many biggest topics on the map; every point has its hover.
MAP_LABELS = 25
_LAYOUT = {"margin": {"l": 48, "r": 16, "t": 24, "b": 40}, "font": {"family": "system-ui, sans-serif"},
           "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "hovermode": "closest"}


def _default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def to_json(figure: dict[str, Any]) -> str:
    # "</" cannot end the <script type="application/json"> block the figure is embedded in.
    return json.dumps(figure, default=_default, ensure_ascii=False).replace("</", "<\\/")


def time_series(rows: list[dict[str, Any]], x: str, series: list[tuple[str, str]], height: int = 280) -> dict:
    return {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": label, "x": [r[x] for r in rows],
                  "y": [r[key] for r in rows], "line": {"color": PALETTE[i % len(PALETTE)]}}
                 for i, (key, label) in enumerate(series)],
        "layout": {**_LAYOUT, "height": height, "legend": {"orientation": "h", "y": -0.2},
                   "xaxis": {"type": "date", "tickformat": "%b %d"}, "yaxis": {"rangemode": "tozero"}},
    }


def bars(labels: list[str], values: list[float], height: int = 300, name: str = "events") -> dict:
    return {
        "data": [{"type": "bar", "orientation": "h", "name": name, "x": values[::-1], "y": labels[::-1],
                  "marker": {"color": PALETTE[0]}}],
        "layout": {**_LAYOUT, "height": height, "margin": {**_LAYOUT["margin"], "l": 200}},
    }


def conversions(rows: list[dict[str, Any]], height: int = 220) -> dict:
    """A topic's clicks and conversions per day (bars) and its revenue (line, right axis)."""
    days = [r["day"] for r in rows]
    return {
        "data": [
            {"type": "bar", "name": "Clicks", "x": days, "y": [r["clicks"] for r in rows],
             "marker": {"color": PALETTE[0]}},
            {"type": "bar", "name": "Conversions", "x": days, "y": [r["conversions"] for r in rows],
             "marker": {"color": PALETTE[2]}},
            {"type": "scatter", "mode": "lines+markers", "name": "Revenue", "x": days,
             "y": [r["revenue"] for r in rows], "yaxis": "y2", "line": {"color": PALETTE[1]}},
        ],
        "layout": {**_LAYOUT, "height": height, "barmode": "group",
                   "legend": {"orientation": "h", "y": -0.25}, "margin": {**_LAYOUT["margin"], "r": 56},
                   "xaxis": {"type": "date", "tickformat": "%b %d"},
                   "yaxis": {"rangemode": "tozero", "title": {"text": "events"}},
                   "yaxis2": {"rangemode": "tozero", "overlaying": "y", "side": "right", "showgrid": False,
                              "title": {"text": "revenue"}}},
    }


def sankey(flows: list[dict[str, Any]]) -> dict:
    """Topic → next topic: sources on the left, destinations (marked "→") on the right, so a topic can
    lead back to itself's neighbours without a cycle."""
    sources = sorted({(r["from_topic_id"], r["from_label"]) for r in flows})
    targets = sorted({(r["to_topic_id"], r["to_label"]) for r in flows})
    left = {tid: i for i, (tid, _) in enumerate(sources)}
    right = {tid: len(sources) + i for i, (tid, _) in enumerate(targets)}
    labels = [label for _, label in sources] + [f"→ {label}" for _, label in targets]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(sources))]
    return {
        "data": [{
            "type": "sankey", "arrangement": "snap",
            "node": {"label": labels, "pad": 12, "thickness": 14,
                     "color": colors + ["#9aa5b1"] * len(targets)},
            "link": {"source": [left[r["from_topic_id"]] for r in flows],
                     "target": [right[r["to_topic_id"]] for r in flows],
                     "value": [r["transitions"] for r in flows],
                     "color": [colors[left[r["from_topic_id"]]] + "66" for r in flows]},
        }],
        "layout": {**_LAYOUT, "height": max(360, 26 * max(len(sources), len(targets)))},
    }


def topic_map(points: list[dict[str, Any]]) -> dict:
    """One trace per theme (so the legend names the colours), marker area proportional to events."""
    biggest = max((p["events"] for p in points), default=0) or 1
    labelled = {p["topic_id"] for p in sorted(points, key=lambda p: -p["events"])[:MAP_LABELS]}
    themes: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        themes.setdefault(p["theme"], []).append(p)
    data = []
    for i, (theme, members) in enumerate(sorted(themes.items())):
        data.append({
            "type": "scatter", "mode": "markers+text", "name": theme,
            "x": [p["x"] for p in members], "y": [p["y"] for p in members],
            "text": [p["label"] if p["topic_id"] in labelled else "" for p in members],
            "textposition": "top center",
            "customdata": [[p["events"], "<br>".join(_short(e) for e in p["examples"]), p["label"]]
                           for p in members],
            "hovertemplate": "<b>%{customdata[2]}</b><br>%{customdata[0]} events<br>%{customdata[1]}"
                             "<extra></extra>",
            "marker": {"size": [8 + 52 * (p["events"] / biggest) ** 0.5 for p in members],
                       "color": PALETTE[i % len(PALETTE)], "opacity": 0.75,
                       "line": {"width": 1, "color": "#fff"}},
        })
    hidden = {"showgrid": False, "zeroline": False, "showticklabels": False}
    return {"data": data, "layout": {**_LAYOUT, "height": 560, "xaxis": hidden, "yaxis": hidden,
                                     "legend": {"title": {"text": "Theme"}}}}


def _short(text: str, width: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def sparkline_points(values: list[int], width: int = 120, height: int = 24) -> str:
    """The ``points`` of an SVG polyline (drawn server-side: a table of topics needs no chart library)."""
    top = max(values, default=0) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}"
                    for i, v in enumerate(values))
