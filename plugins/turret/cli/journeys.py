"""``turret journeys``: where users go between topics: top transitions with probabilities, and top paths.

``--scope session`` (default) follows topics within conversations (marts.agg_topic_transitions and
marts.journey_paths); ``--scope user`` follows the first topic of each of a user's sessions
(marts.fct_user_journeys and journey_paths with scope 'user'). ``--from``/``--to`` take a topic id or a
piece of its label. ``--json`` prints the document described in docs/marts.md ("turret journeys --json").
"""

from __future__ import annotations

import json
from typing import Any

import click

from turret.cli.topics import clip, marts_connection, render_table, resolve_field, resolve_project

DEFAULT_LIMIT = 10

_SESSION_TRANSITIONS = """
    select from_topic_id, to_topic_id, transitions, probability
    from marts.agg_topic_transitions
    where project_id = ? and field = ?
"""

# Same rule as turret.journeys for scope 'user': consecutive sessions' first topics, repeats dropped.
_USER_TRANSITIONS = """
    with moves as (
        select
            lag(first_topic_id) over (partition by user_id order by session_order) as from_topic_id,
            first_topic_id as to_topic_id
        from marts.fct_user_journeys
        where project_id = ? and field = ?
    ),
    counted as (
        select from_topic_id, to_topic_id, count(*) as transitions
        from moves
        where from_topic_id is not null and from_topic_id <> to_topic_id
        group by all
    )
    select from_topic_id, to_topic_id, transitions,
           transitions / sum(transitions) over (partition by from_topic_id) as probability
    from counted
"""


def resolve_topic(labels: dict[int, str], value: str | None, option: str) -> int | None:
    """A topic id, or the one topic whose label contains ``value`` (case-insensitive)."""
    if value is None:
        return None
    try:
        topic_id = int(value)
    except ValueError:
        matches = [t for t, label in labels.items() if value.lower() in (label or "").lower()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise click.BadParameter(f"no topic label contains {value!r}", param_hint=option) from None
        listed = "; ".join(f"{t} {labels[t]}" for t in sorted(matches)[:8])
        raise click.BadParameter(
            f"{value!r} matches {len(matches)} topics ({listed}); give an id or more of the label",
            param_hint=option,
        ) from None
    if topic_id not in labels:
        raise click.BadParameter(f"no topic {topic_id} in this project and field", param_hint=option)
    return topic_id


def _table_exists(con: Any, name: str) -> bool:
    (n,) = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = ?",
        [name],
    ).fetchone()
    return bool(n)


def journeys_document(
    con: Any,
    project: dict[str, str],
    field: str,
    scope: str,
    from_topic: str | None,
    to_topic: str | None,
    limit: int,
) -> dict[str, Any]:
    """The ``--json`` document: transitions and paths, filtered by the from/to topics."""
    labels = dict(
        con.execute(
            "select topic_id, label from marts.dim_topics where project_id = ? and field = ?",
            [project["id"], field],
        ).fetchall()
    )
    src = resolve_topic(labels, from_topic, "--from")
    dst = resolve_topic(labels, to_topic, "--to")

    sql = _SESSION_TRANSITIONS if scope == "session" else _USER_TRANSITIONS
    where, params = [], [project["id"], field]
    if src is not None:
        where.append("from_topic_id = ?")
        params.append(src)
    if dst is not None:
        where.append("to_topic_id = ?")
        params.append(dst)
    transitions = con.execute(
        f"select * from ({sql}) {'where ' + ' and '.join(where) if where else ''} "
        "order by transitions desc, probability desc, from_topic_id, to_topic_id limit ?",
        [*params, limit],
    ).fetchall()

    paths: list[dict[str, Any]] = []
    note = None
    if _table_exists(con, "journey_paths"):
        where, params = ["project_id = ?", "field = ?", "scope = ?"], [project["id"], field, scope]
        if src is not None:
            where.append("path_topic_ids[1] = ?")
            params.append(src)
        if dst is not None:
            where.append("path_topic_ids[-1] = ?")
            params.append(dst)
        rows = con.execute(
            f"select path_topic_ids, path_length, sessions, share from marts.journey_paths "
            f"where {' and '.join(where)} order by sessions desc, path_length desc, path limit ?",
            [*params, limit],
        ).fetchall()
        paths = [
            {
                "topic_ids": list(ids),
                "labels": [labels.get(t, str(t)) for t in ids],
                "length": length,
                "count": count,
                "share": share,
            }
            for ids, length, count, share in rows
        ]
    else:
        note = "no journey paths yet: the pipeline's journeys step has not run"

    # Entries, exits and drop-off are per session (journey_topic_stats has no user scope).
    stats: list[dict[str, Any]] = []
    if scope == "session" and _table_exists(con, "journey_topic_stats"):
        wanted = [t for t in (src, dst) if t is not None]
        where = "project_id = ? and field = ?" + (
            f" and topic_id in ({', '.join('?' * len(wanted))})" if wanted else ""
        )
        stats = [
            {"topic_id": t, "label": labels.get(t), "entries": e, "exits": x, "visits": v, "dropoff_rate": d}
            for t, e, x, v, d in con.execute(
                "select topic_id, entries, exits, visits, dropoff_rate from marts.journey_topic_stats "
                f"where {where} order by visits desc, topic_id limit ?",
                [project["id"], field, *wanted, limit],
            ).fetchall()
        ]

    def topic(t: int | None) -> dict[str, Any] | None:
        return None if t is None else {"topic_id": t, "label": labels.get(t)}

    return {
        "project": project,
        "field": field,
        "scope": scope,
        "from": topic(src),
        "to": topic(dst),
        "transitions": [
            {
                "from_topic_id": a,
                "from_label": labels.get(a),
                "to_topic_id": b,
                "to_label": labels.get(b),
                "count": n,
                "probability": p,
            }
            for a, b, n, p in transitions
        ],
        "paths": paths,
        "topic_stats": stats,
        "note": note,
    }


@click.command()
@click.option("--project", "project", metavar="NAME|ID", help="Project name or id (default: the only one).")
@click.option("--field", "field", metavar="FIELD", help="Text field (default: the only one, else 'prompt').")
@click.option("--from", "from_topic", metavar="TOPIC",
              help="Only moves/paths starting at this topic (id or label).")
@click.option("--to", "to_topic", metavar="TOPIC",
              help="Only moves/paths ending at this topic (id or label).")
@click.option("--scope", type=click.Choice(["session", "user"]), default="session", show_default=True,
              help="Within sessions, or across a user's sessions (their first topics).")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="Most transitions and paths to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document (docs/marts.md).")
def journeys(
    project: str | None,
    field: str | None,
    from_topic: str | None,
    to_topic: str | None,
    scope: str,
    limit: int,
    as_json: bool,
) -> None:
    """Show the most common moves between topics and the most common paths."""
    import duckdb

    with marts_connection() as (con, source):
        try:
            chosen = resolve_project(con, project)
            chosen_field = resolve_field(con, chosen["id"], field)
            doc = journeys_document(con, chosen, chosen_field, scope, from_topic, to_topic, limit)
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise click.ClickException(f"cannot read the marts from {source}: {reason}") from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    unit = "sessions" if scope == "session" else "users"
    click.echo(f"{doc['project']['name']} · {doc['field']} · scope {scope}")
    click.echo("\nTop transitions (P = share of moves out of the from-topic)")
    rows = [
        [f"{t['from_topic_id']} {t['from_label'] or ''}", f"{t['to_topic_id']} {t['to_label'] or ''}",
         t["count"], f"{t['probability']:.1%}"]
        for t in doc["transitions"]
    ]
    headers = [("from", 30, "<"), ("to", 30, "<"), ("moves", 7, ">"), ("P", 6, ">")]
    click.echo(render_table(headers, rows) if rows else "no transitions")
    click.echo(f"\nTop paths (share of {unit} containing the path)")
    if doc["note"]:
        click.echo(doc["note"])
        return
    rows = [[" > ".join(clip(lbl, 24) for lbl in p["labels"]), p["count"], f"{p['share']:.1%}"]
            for p in doc["paths"]]
    headers = [("path", 76, "<"), (unit, 8, ">"), ("share", 6, ">")]
    click.echo(render_table(headers, rows) if rows else "no paths")
    if doc["topic_stats"]:
        click.echo("\nWhere sessions start and end (drop-off = sessions ending there / sessions visiting)")
        rows = [[f"{s['topic_id']} {s['label'] or ''}", s["visits"], s["entries"], s["exits"],
                 f"{s['dropoff_rate']:.0%}"] for s in doc["topic_stats"]]
        headers = [("topic", 40, "<"), ("visits", 8, ">"), ("entries", 8, ">"), ("exits", 8, ">"),
                   ("drop-off", 8, ">")]
        click.echo(render_table(headers, rows))
