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
# part of the journey. Steps come in the one session order (pipeline.session_steps).
_SESSIONS_SQL = """
    select
        s.project_id,
        s.field,
        s.session_id,
        min(s.user_id) as user_id,
        min(s.occurred_at) as session_started_at,
        list(coalesce(j.journey_topic_id, s.topic_id) order by s.step_index) as topics
    from pipeline.session_steps as s
    left join pipeline.journey_topics as j
        on j.project_id = s.project_id and j.field = s.field and j.event_id = s.event_id
    where j.journey_topic_id is null or j.journey_topic_id <> -1
    group by all
    order by 1, 2, 3
"""

PATHS_TABLE = "pipeline.journey_paths"
STATS_TABLE = "pipeline.journey_topic_stats"


def compute_journeys(
    con: duckdb.DuckDBPyConnection,
    *,
    max_path_length: int = MAX_PATH_LENGTH,
    paths_per_length: int = PATHS_PER_LENGTH,
) -> dict[str, int]:
    """Recompute ``pipeline.journey_paths`` and ``pipeline.journey_topic_stats`` from the session steps.

    Reads ``pipeline.session_steps`` with the conversation-aware topics (``pipeline.journey_topics``, else
    the message's own topic), replaces both tables in one transaction, and returns row counts and the number
    of journeys seen. Runs before dbt, whose ``journey_paths`` and ``journey_topic_stats`` marts add topic
    labels and test them (the table definitions are in ``turret.warehouse``).
    """
    from turret.warehouse import ensure_schema

    ensure_schema(con)
    sessions = con.execute(_SESSIONS_SQL).fetchall()
    grouped: dict[tuple[str, str], list] = {}
    for project_id, field, session_id, user_id, started, topics in sessions:
        grouped.setdefault((project_id, field), []).append((user_id, started, session_id, topics))

    path_rows: list[tuple] = []
    stat_rows: list[tuple] = []
    users_total = 0
    for (project_id, field), rows in grouped.items():
        session_seqs = [topics for _, _, _, topics in rows]
        user_seqs = list(user_sequences(rows).values())
        users_total += len(user_seqs)
        for scope, seqs in (("session", session_seqs), ("user", user_seqs)):
            for p in top_paths(seqs, max_length=max_path_length, limit=paths_per_length):
                path_rows.append((project_id, field, scope, len(p.path), list(p.path), p.sessions, p.share))
        # Every topic a user visits is visited by one of their sessions: both dicts have the same topics.
        by_session, by_user = topic_stats(session_seqs), user_topic_stats(rows)
        for topic in [*by_session, *(t for t in by_user if t not in by_session)]:
            st, us = by_session.get(topic, _NO_STATS), by_user.get(topic, _NO_STATS)
            stat_rows.append((
                project_id, field, topic, st.entries, st.exits, st.visits, st.dropoff_rate,
                us.entries, us.exits, us.visits, us.dropoff_rate,
            ))  # fmt: skip

    con.execute("begin transaction")
    try:
        con.execute(f"delete from {PATHS_TABLE}")
        con.execute(f"delete from {STATS_TABLE}")
        _insert(con, PATHS_TABLE, path_rows, 7)
        _insert(con, STATS_TABLE, stat_rows, 11)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {
        "sessions": len(sessions),
        "users": users_total,
        "journey_paths": len(path_rows),
        "journey_topic_stats": len(stat_rows),
    }


_NO_STATS = TopicStats(entries=0, exits=0, visits=0)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], width: int) -> None:
    if not rows:
        return
    import pandas as pd

    # A DataFrame scan is far faster than executemany for thousands of rows.
    frame = pd.DataFrame(rows, columns=[f"c{i}" for i in range(width)])
    con.register("_turret_rows", frame)
    try:
        con.execute(f"insert into {table} select * from _turret_rows")
    finally:
        con.unregister("_turret_rows")
