"""User journeys between topics: transition graphs, top paths, entries, exits and drop-off.

A journey is the ordered list of topics of one session (per project and text field), or, across sessions,
the ordered list of each session's first topic per user. Consecutive repeats of the same topic collapse to
one step (``[A, A, B, A]`` is ``A > B > A``): a user rephrasing a question is not moving anywhere, and
counting the repeat would make every topic look like its own most likely successor.

The functions below are pure (sequences in, numbers out) and use networkx for the graph; only
``compute_journeys`` touches DuckDB. It runs before dbt and replaces two pipeline tables on every run (their
definitions are in ``turret.warehouse``; dbt's ``journey_paths`` and ``journey_topic_stats`` marts build on
them, add topic labels and test them):

- ``pipeline.journey_paths(project_id, field, scope, path_length, path_topic_ids, sessions, share)``:
  contiguous paths of 2..k steps; ``sessions`` counts the sessions (users, for ``scope='user'``) whose
  journey contains the path at least once; ``share`` divides by all sessions (users) of that project/field.
- ``pipeline.journey_topic_stats(project_id, field, topic_id, entries, exits, visits, dropoff_rate,
  user_entries, user_exits, user_visits, user_dropoff_rate)``: per topic, over sessions: how many start
  there, end there, visit it; ``dropoff_rate = exits / visits``; the ``user_*`` columns count the same over
  users, each user's journey being all the topics of all their sessions in order (``user_topic_stats``): a
  user exits where their last session ended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:
    import duckdb

# Longest path stored in pipeline.journey_paths.
MAX_PATH_LENGTH = 4
# Most frequent paths kept per (project, field, scope, length): long sessions over many topics would
# otherwise produce a combinatorial number of once-seen paths nobody reads.
PATHS_PER_LENGTH = 1000

Topic = Hashable


@dataclass(frozen=True)
class PathCount:
    """A path of topics, how many journeys contain it, and that count over all journeys."""

    path: tuple
    sessions: int
    share: float


@dataclass(frozen=True)
class TopicStats:
    """Per topic: journeys starting there, ending there, visiting it, and exits / visits."""

    entries: int
    exits: int
    visits: int

    @property
    def dropoff_rate(self) -> float:
        return self.exits / self.visits if self.visits else 0.0


def collapse_repeats(sequence: Iterable[Topic]) -> list:
    """Drop consecutive duplicates: ``[A, A, B, B, A] -> [A, B, A]``."""
    out: list = []
    for topic in sequence:
        if not out or out[-1] != topic:
            out.append(topic)
    return out


def transition_graph(sequences: Iterable[Sequence[Topic]]) -> nx.DiGraph:
    """Directed graph of topic moves; edge ``count`` = moves, edge ``probability`` = count / node out-count.

    Nodes carry ``visits``, ``entries`` and ``exits`` (counted over journeys, as in ``topic_stats``).
    Sequences are collapsed first.
    """
    graph = nx.DiGraph()
    for raw in sequences:
        steps = collapse_repeats(raw)
        if not steps:
            continue
        for topic in set(steps):
            graph.add_node(topic)
            graph.nodes[topic]["visits"] = graph.nodes[topic].get("visits", 0) + 1
        for end, key in ((steps[0], "entries"), (steps[-1], "exits")):
            graph.nodes[end][key] = graph.nodes[end].get(key, 0) + 1
        for a, b in zip(steps, steps[1:], strict=False):
            if graph.has_edge(a, b):
                graph[a][b]["count"] += 1
            else:
                graph.add_edge(a, b, count=1)
    for node in graph.nodes:
        for key in ("visits", "entries", "exits"):
            graph.nodes[node].setdefault(key, 0)
        out_total = sum(d["count"] for _, _, d in graph.out_edges(node, data=True))
        for _, _, data in graph.out_edges(node, data=True):
            data["probability"] = data["count"] / out_total
    return graph


def transition_probabilities(graph: nx.DiGraph) -> dict[tuple, float]:
    """``{(from, to): P(to | from)}``; sums to 1 over each from-topic that has any move."""
    return {(a, b): data["probability"] for a, b, data in graph.edges(data=True)}


def top_transitions(graph: nx.DiGraph, limit: int | None = None) -> list[tuple]:
    """``[(from, to, count, probability)]`` by count (then from, to), most frequent first."""
    rows = [(a, b, d["count"], d["probability"]) for a, b, d in graph.edges(data=True)]
    rows.sort(key=lambda r: (-r[2], str(r[0]), str(r[1])))
    return rows[:limit] if limit is not None else rows


def topic_stats(sequences: Iterable[Sequence[Topic]]) -> dict[Topic, TopicStats]:
    """Entries, exits and visits per topic, counted once per journey."""
    graph = transition_graph(sequences)
    return {
        node: TopicStats(entries=data["entries"], exits=data["exits"], visits=data["visits"])
        for node, data in graph.nodes(data=True)
    }


def entry_topics(sequences: Iterable[Sequence[Topic]]) -> Counter:
    """How many journeys start at each topic."""
    return Counter(steps[0] for steps in map(collapse_repeats, sequences) if steps)


def exit_topics(sequences: Iterable[Sequence[Topic]]) -> Counter:
    """How many journeys end at each topic."""
    return Counter(steps[-1] for steps in map(collapse_repeats, sequences) if steps)


def top_paths(
    sequences: Iterable[Sequence[Topic]],
    *,
    min_length: int = 2,
    max_length: int = MAX_PATH_LENGTH,
    limit: int | None = None,
) -> list[PathCount]:
    """Contiguous paths of ``min_length..max_length`` steps, by the number of journeys containing them.

    A path counts once per journey even if the journey goes through it twice. ``share`` is over all
    journeys given (including those too short to contain any path). Ties sort by path for stable output.
    ``limit`` applies per path length.
    """
    if min_length < 1 or max_length < min_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}..{max_length}")
    counts: dict[int, Counter] = {n: Counter() for n in range(min_length, max_length + 1)}
    total = 0
    for raw in sequences:
        steps = collapse_repeats(raw)
        total += 1
        for n in counts:
            seen = {tuple(steps[i : i + n]) for i in range(len(steps) - n + 1)}
            counts[n].update(seen)
    out: list[PathCount] = []
    for n in sorted(counts):
        ranked = sorted(counts[n].items(), key=lambda kv: (-kv[1], [str(t) for t in kv[0]]))
        if limit is not None:
            ranked = ranked[:limit]
        out.extend(PathCount(path=p, sessions=c, share=c / total) for p, c in ranked)
    return out


def paths_from(paths: Iterable[PathCount], topic: Topic) -> list[PathCount]:
    """The paths that start at ``topic``."""
    return [p for p in paths if p.path[0] == topic]


def paths_to(paths: Iterable[PathCount], topic: Topic) -> list[PathCount]:
    """The paths that end at ``topic``."""
    return [p for p in paths if p.path[-1] == topic]


def most_likely_path(graph: nx.DiGraph, source: Topic, steps: int) -> list:
    """Follow the most probable next topic from ``source`` for up to ``steps`` moves, never revisiting."""
    path = [source]
    while len(path) <= steps:
        options = [
            (-d["probability"], str(b), b)
            for _, b, d in graph.out_edges(path[-1], data=True)
            if b not in path
        ]
        if not options:
            break
        # Ties on probability go to the topic that sorts first, so the answer is stable.
        path.append(min(options, key=lambda o: (o[0], o[1]))[2])
    return path


def user_sequences(
    sessions: Iterable[tuple[Any, Any, Any, Sequence[Topic]]], *, mode: str = "first"
) -> dict[Any, list]:
    """Cross-session journeys per user, sessions in order of their start (then id).

    ``sessions`` holds ``(user_id, session_started_at, session_id, topics)``. ``mode="first"`` (what
    ``compute_journeys`` stores) keeps each session's first topic: how users come back; ``mode="all"``
    chains every topic of every session. Empty sessions are skipped.
    """
    if mode not in ("first", "all"):
        raise ValueError(f"mode must be 'first' or 'all', got {mode!r}")
    by_user: dict[Any, list] = {}
    for user, _started, _session, topics in sorted(sessions, key=lambda s: (str(s[0]), s[1], str(s[2]))):
        if topics:
            steps = by_user.setdefault(user, [])
            steps.extend(topics[:1] if mode == "first" else topics)
    return by_user


def user_topic_stats(sessions: Iterable[tuple[Any, Any, Any, Sequence[Topic]]]) -> dict[Topic, TopicStats]:
    """Entries, exits and visits per topic counted once per *user*, across their sessions.

    ``sessions`` as for ``user_sequences``. A user's journey chains every topic of every session in session
    order (``mode="all"``), so a user enters where their first session started, exits where their last
    session ended, and visits every topic of any session; ``dropoff_rate`` is then the share of the users
    who reached a topic that were last seen there.
    """
    return topic_stats(user_sequences(sessions, mode="all").values())


# --- warehouse ---------------------------------------------------------------------------------------

# Each step's topic is the conversation-aware one (pipeline.journey_topics), falling back to the message's own
# topic where the conversation step has not seen it; steps before anything topical (journey topic -1) are not
# part of the journey. Steps come in the one session order (pipeline.session_steps). ``{only}`` restricts the
# sessions.
_SESSIONS_TEMPLATE = """
    select
        s.project_id,
        s.field,
        s.session_id,
        min(s.user_id) filter (where {topical}) as user_id,
        min(s.occurred_at) filter (where {topical}) as session_started_at,
        list(coalesce(j.journey_topic_id, s.topic_id) order by s.step_index)
            filter (where {topical}) as topics
    from pipeline.session_steps as s
    left join pipeline.journey_topics as j
        on j.project_id = s.project_id and j.field = s.field and j.event_id = s.event_id
    {only}
    group by all
    order by 1, 2, 3
"""
_TOPICAL = "j.journey_topic_id is null or j.journey_topic_id <> -1"
_SESSIONS_SQL = _SESSIONS_TEMPLATE.format(only="", topical=_TOPICAL)

# The journeys whose parts are missing or older than their steps or journey topics, or whose steps are gone:
# sessions, then their users (a user's journey is all their sessions), as (project_id, field, scope, id).
_CHANGED_SQL = """
    create or replace temp table _turret_changed_journeys as
    with sessions as (
        select s.project_id, s.field, s.session_id, min(s.user_id) as user_id,
               max(greatest(s.updated_at, coalesce(j.updated_at, s.updated_at))) as changed_at,
               bool_or(s.updated_at is null) as unstamped
        from pipeline.session_steps as s
        left join pipeline.journey_topics as j
            on j.project_id = s.project_id and j.field = s.field and j.event_id = s.event_id
        group by all
    ),
    parts as (
        select project_id, field, journey_id, max(updated_at) as written_at,
               bool_or(max_length <> $max) as stale
        from pipeline.journey_parts where scope = 'session' group by all
    ),
    changed_sessions as (
        select s.project_id, s.field, s.session_id, s.user_id
        from sessions as s
        left join parts as p
            on p.project_id = s.project_id and p.field = s.field and p.journey_id = s.session_id
        where p.journey_id is null or p.stale or s.unstamped or s.changed_at > p.written_at
    ),
    gone_sessions as (
        select p.project_id, p.field, p.journey_id as session_id, p.user_id
        from pipeline.journey_parts as p
        anti join sessions as s
            on s.project_id = p.project_id and s.field = p.field and s.session_id = p.journey_id
        where p.scope = 'session'
    )
    select distinct project_id, field, 'session' as scope, session_id as journey_id
    from (select * from changed_sessions union all select * from gone_sessions)
    union
    select distinct project_id, field, 'user' as scope, user_id as journey_id
    from (select * from changed_sessions union all select * from gone_sessions)
"""

# Journey counts: paths per length (the most frequent first, ties by the path's ids as text) and, per topic,
# journeys entering, leaving and visiting it; both over every journey's parts.
_PATHS_SQL = """
    insert into pipeline.journey_paths
    with counts as (
        select project_id, field, scope, len(topic_ids) as path_length, topic_ids, count(*) as journeys
        from pipeline.journey_parts where part = 'path' group by all
    ),
    totals as (
        select project_id, field, scope, count(*) as journeys
        from pipeline.journey_parts where part = 'entry' group by all
    ),
    ranked as (
        select c.*, c.journeys / t.journeys as share,
               row_number() over (
                   partition by c.project_id, c.field, c.scope, c.path_length
                   order by c.journeys desc, cast(c.topic_ids as varchar[])
               ) as rank
        from counts as c join totals as t using (project_id, field, scope)
    )
    select project_id, field, scope, path_length, topic_ids, journeys, share from ranked where rank <= $limit
"""
_STATS_SQL = """
    insert into pipeline.journey_topic_stats
    with counted as (
        select project_id, field, topic_ids[1] as topic_id,
               count(*) filter (where scope = 'session' and part = 'entry') as entries,
               count(*) filter (where scope = 'session' and part = 'exit') as exits,
               count(*) filter (where scope = 'session' and part = 'visit') as visits,
               count(*) filter (where scope = 'user' and part = 'entry') as user_entries,
               count(*) filter (where scope = 'user' and part = 'exit') as user_exits,
               count(*) filter (where scope = 'user' and part = 'visit') as user_visits
        from pipeline.journey_parts where part in ('entry', 'exit', 'visit') group by all
    )
    select project_id, field, topic_id, entries, exits, visits,
           case when visits > 0 then exits / visits else 0 end,
           user_entries, user_exits, user_visits,
           case when user_visits > 0 then user_exits / user_visits else 0 end
    from counted
"""

PATHS_TABLE = "pipeline.journey_paths"
STATS_TABLE = "pipeline.journey_topic_stats"
PARTS_TABLE = "pipeline.journey_parts"


def journey_parts(steps: Sequence[Topic], *, paths_from: Sequence[Topic] | None = None,
                  max_path_length: int = MAX_PATH_LENGTH) -> list[tuple[str, tuple]]:
    """What one journey adds to the counts: each distinct path of 2..``max_path_length`` steps (``path``),
    its first and last topic (``entry``, ``exit``) and each topic it visits (``visit``); ``empty`` alone
    for a journey without a step. ``paths_from`` takes the paths from another sequence (a user's journey
    counts paths over each session's first topic, and entries, exits and visits over every topic)."""
    steps = collapse_repeats(steps)
    if not steps:
        return [("empty", ())]
    path_steps = collapse_repeats(paths_from) if paths_from is not None else steps
    parts = [("path", p.path) for p in top_paths([path_steps], max_length=max_path_length)]
    parts += [("entry", (steps[0],)), ("exit", (steps[-1],))]
    parts += [("visit", (t,)) for t in sorted(set(steps), key=str)]
    return parts


def compute_journeys(
    con: duckdb.DuckDBPyConnection,
    *,
    max_path_length: int = MAX_PATH_LENGTH,
    paths_per_length: int = PATHS_PER_LENGTH,
    stamp: datetime | None = None,
) -> dict[str, int]:
    """Bring ``pipeline.journey_paths`` and ``pipeline.journey_topic_stats`` up to date.

    Each journey's parts (``journey_parts``: its paths, entry, exit and visits) are kept in
    ``pipeline.journey_parts``; only the sessions whose steps or journey topics were written since their
    parts were (and the users of those sessions) are walked again, so the cost follows the sessions an hour
    touched. Both tables are then counted from every journey's parts in SQL and replaced in one transaction.
    Returns the numbers of sessions, users and rows, and of journeys walked again. Runs before dbt, whose
    ``journey_paths`` and ``journey_topic_stats`` marts add topic labels and test them (the table
    definitions are in ``turret.warehouse``).
    """
    from turret.warehouse import ensure_schema

    ensure_schema(con)
    stamp = stamp or datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        con.execute(_CHANGED_SQL, {"max": max_path_length})
        sessions = con.execute(_SESSIONS_TEMPLATE.format(topical=_TOPICAL, only="""
            semi join _turret_changed_journeys as c on c.project_id = s.project_id and c.field = s.field
                and c.scope = 'user' and c.journey_id = s.user_id""")).fetchall()
        changed = {(p, f, scope, jid) for p, f, scope, jid in
                   con.execute("select * from _turret_changed_journeys").fetchall()}
        rows: list[tuple] = []
        by_user: dict[tuple[str, str], list] = {}
        for project_id, field, session_id, user_id, started, topics in sessions:
            if (project_id, field, "session", session_id) in changed:
                rows += [(project_id, field, "session", session_id, user_id, part, list(ids))
                         for part, ids in journey_parts(topics or [], max_path_length=max_path_length)]
            by_user.setdefault((project_id, field), []).append((user_id, started, session_id, topics or []))
        for (project_id, field), user_sessions in by_user.items():
            firsts = user_sequences(user_sessions, mode="first")
            for user_id, every in user_sequences(user_sessions, mode="all").items():
                if (project_id, field, "user", user_id) not in changed:
                    continue  # a session shared with another user brought this one's sessions along
                rows += [(project_id, field, "user", user_id, user_id, part, list(ids)) for part, ids in
                         journey_parts(every, paths_from=firsts[user_id], max_path_length=max_path_length)]
        con.execute(f"""delete from {PARTS_TABLE} as p using _turret_changed_journeys as c
                        where p.project_id = c.project_id and p.field = c.field and p.scope = c.scope
                          and p.journey_id = c.journey_id""")
        _insert_parts(con, rows, stamp, max_path_length)
        con.execute(f"delete from {PATHS_TABLE}")
        con.execute(f"delete from {STATS_TABLE}")
        con.execute(_PATHS_SQL, {"limit": paths_per_length})
        con.execute(_STATS_SQL)
        counts = con.execute(f"""select
            (select count(*) from {PARTS_TABLE} where scope = 'session' and part = 'entry'),
            (select count(*) from {PARTS_TABLE} where scope = 'user' and part = 'entry'),
            (select count(*) from {PATHS_TABLE}), (select count(*) from {STATS_TABLE}),
            (select count(*) from _turret_changed_journeys where scope = 'session'),
            (select count(*) from _turret_changed_journeys where scope = 'user')""").fetchone()
        con.execute("drop table _turret_changed_journeys")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    keys = ("sessions", "users", "journey_paths", "journey_topic_stats", "sessions_walked", "users_walked")
    return dict(zip(keys, (int(n) for n in counts), strict=True))


def _insert_parts(con: duckdb.DuckDBPyConnection, rows: list[tuple], stamp: datetime,
                  max_length: int) -> None:
    if not rows:
        return
    import pandas as pd

    # A DataFrame scan is far faster than executemany for thousands of rows.
    frame = pd.DataFrame(rows, columns=["project_id", "field", "scope", "journey_id", "user_id", "part",
                                        "topic_ids"])
    con.register("_turret_parts", frame)
    try:
        con.execute(
            f"insert into {PARTS_TABLE} select project_id, field, scope, journey_id, user_id, part, "
            "cast(topic_ids as integer[]), ?, ? from _turret_parts",
            [max_length, stamp],
        )
    finally:
        con.unregister("_turret_parts")
