"""``turret topics``: the topics of one project's text field, biggest first, with their 24-hour trend.

Reads the published copy of the marts when there is one, else the warehouse read-only (turret.publish).
The trend compares the 24 hours up to the latest event of that project and field with the 24 hours before:
a snapshot published yesterday still shows a meaningful trend, rather than "no events in the last day".

When anything followed the topics' messages (views, clicks, purchases, conversions: docs/marts.md,
"Conversions by topic"), the table adds click-through rate, conversions and revenue per topic.

``--json`` prints the document described in docs/marts.md ("turret topics --json").
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

import click

DEFAULT_LIMIT = 20
DEFAULT_FIELD = "prompt"


@contextmanager
def marts_connection():
    """Open the marts read-only for a command; any failure becomes a one-line click error."""
    from turret.publish import PublishError, open_marts
    from turret.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        con, source = open_marts(settings)
    except (PublishError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield con, source
    finally:
        con.close()


def resolve_project(con: Any, project: str | None) -> dict[str, str]:
    """A project by id or name (case-insensitive); without one, the only project that has topics."""
    everything = con.execute(
        """select p.project_id, p.project_name,
                  exists (select 1 from marts.dim_topics t where t.project_id = p.project_id) as has_topics
           from marts.dim_projects p
           order by p.project_name, p.project_id"""
    ).fetchall()
    rows = [(pid, name) for pid, name, _ in everything] if project is not None else [
        (pid, name) for pid, name, has_topics in everything if has_topics
    ]
    if project is not None:
        matches = [r for r in rows if project in (r[0],) or project.lower() == (r[1] or "").lower()]
        if not matches:
            known = ", ".join(name for _, name in rows) or "none"
            raise click.BadParameter(f"no project {project!r} (projects: {known})", param_hint="--project")
        if len(matches) > 1:
            ids = ", ".join(r[0] for r in matches)
            raise click.BadParameter(
                f"{project!r} names several projects; use an id: {ids}", param_hint="--project"
            )
        rows = matches
    if not rows:
        raise click.ClickException("no project has topics yet: run the pipeline first")
    if len(rows) > 1:
        names = ", ".join(name for _, name in rows)
        raise click.UsageError(f"several projects have topics, choose one with --project ({names})")
    return {"id": rows[0][0], "name": rows[0][1]}


def resolve_field(con: Any, project_id: str, field: str | None) -> str:
    """The given text field, or the project's only one, or "prompt" when it has several."""
    fields = [
        f for (f,) in con.execute(
            "select distinct field from marts.dim_topics where project_id = ? order by field", [project_id]
        ).fetchall()
    ]
    if field is not None:
        if field not in fields:
            raise click.BadParameter(
                f"no text field {field!r} in this project (fields: {', '.join(fields) or 'none'})",
                param_hint="--field",
            )
        return field
    if not fields:
        raise click.ClickException("this project has no topics yet: run the pipeline first")
    if len(fields) == 1:
        return fields[0]
    if DEFAULT_FIELD in fields:
        return DEFAULT_FIELD
    raise click.UsageError(f"several text fields, choose one with --field ({', '.join(fields)})")


def clip(text: Any, width: int) -> str:
    """Fit ``text`` in ``width`` characters on one line (newlines flattened, '…' when cut)."""
    text = " ".join(str("" if text is None else text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(headers: list[tuple[str, int, str]], rows: list[list[Any]]) -> str:
    """Fixed-width columns; ``headers`` holds (title, width, '<' or '>') per column."""
    def line(cells: list[Any]) -> str:
        return "  ".join(f"{clip(c, w):{a}{w}}" for c, (_, w, a) in zip(cells, headers, strict=True)).rstrip()

    out = [line([h for h, _, _ in headers]), line(["-" * w for _, w, _ in headers])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def trend_text(last: int, previous: int) -> str:
    if previous == 0:
        return "new" if last else "-"
    change = (last - previous) / previous
    return f"{change:+.0%}"


def topics_document(con: Any, project: dict[str, str], field: str, limit: int,
                    conversational: bool = False) -> dict[str, Any]:
    """The ``--json`` document: project, field, as_of, total events and the topics, biggest first.

    Conversational topics (thanks, greetings, yes/no) are left out unless ``conversational``; the document
    says how many there are and what share of the events they hold either way."""
    (as_of,) = con.execute(
        "select max(occurred_at) from marts.fct_events where project_id = ? and field = ?",
        [project["id"], field],
    ).fetchone()
    rows = con.execute(
        """
        with counts as (
            select
                topic_id,
                count(*) filter (where occurred_at > cast(? as timestamp) - interval 24 hour) as last_24h,
                count(*) filter (where occurred_at <= cast(? as timestamp) - interval 24 hour
                                   and occurred_at > cast(? as timestamp) - interval 48 hour) as previous_24h
            from marts.fct_events
            where project_id = ? and field = ?
            group by all
        )
        select d.topic_id, d.label, d.description, d.events, d.theme, d.status, d.is_unclustered,
               coalesce(c.last_24h, 0), coalesce(c.previous_24h, 0),
               d.is_conversational
        from marts.dim_topics d
        left join counts c using (topic_id)
        where d.project_id = ? and d.field = ? and (? or not d.is_conversational)
        order by d.events desc, d.topic_id
        limit ?
        """,
        [as_of, as_of, as_of, project["id"], field, project["id"], field, conversational, limit],
    ).fetchall()
    (n_chat, chat_events) = con.execute(
        "select count(*), coalesce(sum(events), 0) from marts.dim_topics "
        "where project_id = ? and field = ? and is_conversational",
        [project["id"], field],
    ).fetchone()
    (total,) = con.execute(
        "select count(*) from marts.fct_events where project_id = ? and field = ?", [project["id"], field]
    ).fetchone()
    topics = []
    for tid, label, desc, events, theme, status, unclustered, last, prev, chat in rows:
        topics.append(
            {
                "topic_id": tid,
                "label": label,
                "description": desc,
                "events": events,
                "share": events / total if total else 0.0,
                "theme": theme,
                "status": status,
                "is_unclustered": bool(unclustered),
                "is_conversational": bool(chat),
                "trend": {
                    "last_24h": last,
                    "previous_24h": prev,
                    "change": (last - prev) / prev if prev else None,
                },
            }
        )
    outcomes = conversions_by_topic(con, project["id"], field)
    for topic in topics:
        topic["conversions"] = outcomes.get(topic["topic_id"]) if outcomes else None
    return {
        "project": project,
        "field": field,
        "as_of": as_of.isoformat() if as_of else None,
        "total_events": total,
        "topics": topics,
        "conversational": {"topics": int(n_chat), "events": int(chat_events),
                           "share": chat_events / total if total else 0.0, "listed": conversational},
    }


def conversions_by_topic(con: Any, project_id: str, field: str) -> dict[int, dict[str, Any]]:
    """What followed each topic's messages, over all days (marts.agg_topic_conversions_daily); empty when
    nothing did, or when the marts predate that table."""
    present = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'agg_topic_conversions_daily'"
    ).fetchone()[0]
    if not present:
        return {}
    rows = con.execute(
        """
        select topic_id, sum(messages), sum(views), sum(clicks), sum(messages_clicked), sum(add_to_carts),
               sum(purchases), sum(conversions), sum(messages_converted), sum(revenue)
        from marts.agg_topic_conversions_daily
        where project_id = ? and field = ?
        group by topic_id
        """,
        [project_id, field],
    ).fetchall()
    out: dict[int, dict[str, Any]] = {}
    for tid, messages, views, clicks, clicked, carts, purchases, conversions, converted, revenue in rows:
        out[tid] = {
            "messages": int(messages), "views": int(views), "clicks": int(clicks),
            "click_through_rate": clicked / messages if messages else 0.0,
            "add_to_carts": int(carts), "purchases": int(purchases), "conversions": int(conversions),
            "conversion_rate": converted / messages if messages else 0.0, "revenue": float(revenue),
        }
    if not any(o["views"] or o["clicks"] or o["add_to_carts"] or o["purchases"] or o["conversions"]
               for o in out.values()):
        return {}
    return out


@click.command()
@click.option("--project", "project", metavar="NAME|ID", help="Project name or id (default: the only one).")
@click.option("--field", "field", metavar="FIELD", help="Text field (default: the only one, else 'prompt').")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="Most topics to show.")
@click.option("--conversational", is_flag=True,
              help="Also list chit-chat topics (thanks, greetings, yes/no), hidden by default.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (docs/marts.md).")
def topics(project: str | None, field: str | None, limit: int, conversational: bool, as_json: bool) -> None:
    """List a project's topics: events, share, theme, status, 24-hour trend, and conversions when any."""
    import duckdb

    with marts_connection() as (con, source):
        try:
            chosen = resolve_project(con, project)
            chosen_field = resolve_field(con, chosen["id"], field)
            doc = topics_document(con, chosen, chosen_field, limit, conversational)
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise click.ClickException(f"cannot read the marts from {source}: {reason}") from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"{doc['project']['name']} · {doc['field']} · {doc['total_events']} events"
        + (f" · trend = last 24h to {doc['as_of'][:16]} vs the 24h before" if doc["as_of"] else "")
    )
    headers = [("id", 5, ">"), ("label", 34, "<"), ("events", 8, ">"), ("share", 6, ">"),
               ("theme", 18, "<"), ("status", 9, "<"), ("trend", 6, ">")]
    rows = [
        [t["topic_id"], t["label"], t["events"], f"{t['share']:.1%}", t["theme"] or "", t["status"],
         trend_text(t["trend"]["last_24h"], t["trend"]["previous_24h"])]
        for t in doc["topics"]
    ]
    if any(t["conversions"] is not None for t in doc["topics"]):
        headers += [("ctr", 6, ">"), ("conv", 6, ">"), ("revenue", 10, ">")]
        for row, topic in zip(rows, doc["topics"], strict=True):
            c = topic["conversions"]
            row += [f"{c['click_through_rate']:.1%}", c["conversions"], f"{c['revenue']:,.2f}"] if c else [
                "-", "-", "-"]
    click.echo(render_table(headers, rows) if rows else "no topics yet")
    waiting = [t for t in doc["topics"] if t["is_unclustered"] and t["share"] >= 0.999 and t["description"]]
    if waiting:
        click.echo(waiting[0]["description"])  # a field below the fit minimum says how many texts are missing
    chat = doc["conversational"]
    if chat["topics"] and not chat["listed"]:
        click.echo(f"{chat['topics']} conversational topics "
                   f"(thanks, greetings, yes/no: {chat['share']:.1%} of "
                   "events) not listed; --conversational shows them")
