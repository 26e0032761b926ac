"""turret.journeys: pure functions on small sequences with answers worked out by hand, and
compute_journeys on the fixture warehouse's session steps (tests/fixtures/warehouse.py documents its
numbers)."""

from __future__ import annotations

import duckdb
import pytest
from turret import journeys as j
from turret.session_steps import write_session_steps

from tests.fixtures import warehouse as fx

# A > B > C, A > B, A > C, B (alone), A A B B (repeats)
SEQS = [["A", "B", "C"], ["A", "B"], ["A", "C"], ["B"], ["A", "A", "B", "B"]]


def test_collapse_repeats_keeps_returns():
    assert j.collapse_repeats(["A", "A", "B", "B", "A"]) == ["A", "B", "A"]
    assert j.collapse_repeats([]) == []


def test_transition_graph_counts_and_probabilities():
    graph = j.transition_graph(SEQS)
    # A->B in 3 journeys (the repeat one collapses to A > B), A->C once, B->C once; no self loops.
    assert graph["A"]["B"]["count"] == 3
    assert graph["A"]["C"]["count"] == 1
    assert graph["B"]["C"]["count"] == 1
    assert not graph.has_edge("A", "A") and not graph.has_edge("B", "B")
    probs = j.transition_probabilities(graph)
    assert probs[("A", "B")] == pytest.approx(0.75)
    assert probs[("A", "C")] == pytest.approx(0.25)
    assert probs[("B", "C")] == pytest.approx(1.0)
    for node in graph:
        out = [p for (a, _), p in probs.items() if a == node]
        assert not out or sum(out) == pytest.approx(1.0, abs=1e-12)


def test_entries_exits_visits_and_dropoff():
    stats = j.topic_stats(SEQS)
    assert stats["A"] == j.TopicStats(entries=4, exits=0, visits=4)
    assert stats["B"] == j.TopicStats(entries=1, exits=3, visits=4)
    assert stats["C"] == j.TopicStats(entries=0, exits=2, visits=2)
    assert stats["B"].dropoff_rate == pytest.approx(0.75)
    assert stats["A"].dropoff_rate == 0.0
    assert j.entry_topics(SEQS) == {"A": 4, "B": 1}
    assert j.exit_topics(SEQS) == {"B": 3, "C": 2}


def test_a_journey_that_returns_counts_once_per_topic():
    stats = j.topic_stats([["A", "B", "A"]])
    assert stats["A"] == j.TopicStats(entries=1, exits=1, visits=1)
    assert stats["A"].dropoff_rate == 1.0


def test_top_paths_count_journeys_not_occurrences():
    paths = j.top_paths(SEQS + [["A", "B", "A", "B"]], max_length=3)
    by_path = {p.path: p for p in paths}
    # A > B is in 4 journeys of 6 (twice in the last one, counted once).
    assert by_path[("A", "B")].sessions == 4
    assert by_path[("A", "B")].share == pytest.approx(4 / 6)
    assert by_path[("A", "B", "C")].sessions == 1
    assert by_path[("B", "A", "B")].sessions == 1
    assert ("A", "A") not in by_path
    # Most frequent first within each length, lengths in order.
    assert paths[0].path == ("A", "B")
    assert [len(p.path) for p in paths] == sorted(len(p.path) for p in paths)


def test_top_paths_limit_and_validation():
    assert len(j.top_paths(SEQS, max_length=2, limit=1)) == 1
    with pytest.raises(ValueError, match="min_length"):
        j.top_paths(SEQS, min_length=3, max_length=2)


def test_paths_from_and_to_a_topic():
    paths = j.top_paths(SEQS, max_length=3)
    assert {p.path for p in j.paths_from(paths, "B")} == {("B", "C")}
    assert {p.path for p in j.paths_to(paths, "C")} == {("A", "C"), ("B", "C"), ("A", "B", "C")}


def test_most_likely_path_follows_highest_probability_without_cycles():
    graph = j.transition_graph([["A", "B", "A"], ["A", "B", "C"], ["A", "B", "C"]])
    # B -> C (2) beats B -> A (1); A is already on the path anyway.
    assert j.most_likely_path(graph, "A", 3) == ["A", "B", "C"]
    assert j.most_likely_path(graph, "C", 3) == ["C"]


def test_user_sequences_use_first_topic_of_each_session_in_time_order():
    sessions = [
        ("u1", 2, "s2", [3, 1]),
        ("u1", 1, "s1", [0, 2]),
        ("u2", 5, "s9", []),
        ("u2", 6, "s8", [4]),
    ]
    assert j.user_sequences(sessions) == {"u1": [0, 3], "u2": [4]}
    assert j.user_sequences(sessions, mode="all") == {"u1": [0, 2, 3, 1], "u2": [4]}
    with pytest.raises(ValueError, match="mode"):
        j.user_sequences(sessions, mode="last")


def test_user_topic_stats_follow_each_user_across_sessions():
    # u1: s1 A > B, then s2 B > C (the B B across the boundary collapses): enters A, exits C.
    # u2: s3 C, then s4 A: enters C, exits A. u3: s5 A A: enters and exits A.
    sessions = [
        ("u1", 2, "s2", ["B", "C"]),
        ("u1", 1, "s1", ["A", "B"]),
        ("u2", 3, "s3", ["C"]),
        ("u2", 4, "s4", ["A"]),
        ("u3", 5, "s5", ["A", "A"]),
    ]
    stats = j.user_topic_stats(sessions)
    assert stats == {
        "A": j.TopicStats(entries=2, exits=2, visits=3),
        "B": j.TopicStats(entries=0, exits=0, visits=1),
        "C": j.TopicStats(entries=1, exits=1, visits=2),
    }
    assert stats["A"].dropoff_rate == pytest.approx(2 / 3)
    # Per session the same data has 5 journeys: A enters 3 times (s1, s4, s5) and exits twice (s4, s5).
    per_session = j.topic_stats([topics for *_, topics in sessions])
    assert per_session["A"] == j.TopicStats(entries=3, exits=2, visits=3)
    assert per_session["B"] == j.TopicStats(entries=1, exits=1, visits=2)


@pytest.fixture
def fixture_con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    fx.build(con)
    write_session_steps(con)
    yield con
    con.close()


def test_compute_journeys_on_fixture_warehouse(fixture_con):
    counts = j.compute_journeys(fixture_con)
    assert counts["sessions"] == 8  # 7 acme + 1 trialco
    paths = {
        (scope, tuple(ids)): (n, share)
        for scope, ids, n, share in fixture_con.execute(
            "select scope, path_topic_ids, sessions, share from pipeline.journey_paths where project_id = ?",
            [fx.ACME],
        ).fetchall()
    }
    assert paths[("session", (0, 1))] == (2, pytest.approx(2 / 7))
    assert paths[("session", (1, 2))] == (2, pytest.approx(2 / 7))
    assert paths[("session", (0, 2))] == (1, pytest.approx(1 / 7))
    assert paths[("session", (-1, 0))] == (1, pytest.approx(1 / 7))
    assert paths[("session", (0, 1, 2))] == (1, pytest.approx(1 / 7))
    assert len([k for k in paths if k[0] == "session"]) == 5
    # Users: u1 0>1, u2 0>2, u3 0>-1, u4 1 (4 users).
    assert {k[1]: v for k, v in paths.items() if k[0] == "user"} == {
        (0, 1): (1, 0.25), (0, 2): (1, 0.25), (0, -1): (1, 0.25)
    }
    stats = {
        row[0]: row[1:]
        for row in fixture_con.execute(
            "select topic_id, entries, exits, visits, dropoff_rate, user_entries, user_exits, user_visits, "
            "user_dropoff_rate from pipeline.journey_topic_stats where project_id = ? and field = 'prompt'",
            [fx.ACME],
        ).fetchall()
    }
    # Per session: see tests/fixtures/warehouse.py. Per user, all sessions chained in order:
    # u1 0 > 1 > 2, u2 0 > 1 > 2, u3 0 > 2 > -1 > 0, u4 1.
    assert {t: s[:4] for t, s in stats.items()} == {
        0: (3, 1, 4, 0.25), 1: (2, 2, 4, 0.5), 2: (1, 4, 4, 1.0), -1: (1, 0, 1, 0.0)
    }
    assert {t: s[4:7] for t, s in stats.items()} == {0: (3, 1, 3), 1: (1, 1, 3), 2: (0, 2, 3), -1: (0, 0, 1)}
    assert {t: s[7] for t, s in stats.items()} == {
        0: pytest.approx(1 / 3), 1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), -1: 0.0
    }
    (trial,) = fixture_con.execute(
        "select entries, exits, visits, user_entries, user_exits, user_visits "
        "from pipeline.journey_topic_stats where project_id = ?", [fx.TRIALCO]
    ).fetchall()
    assert trial == (1, 1, 1, 1, 1, 1)


def test_compute_journeys_replaces_instead_of_appending(fixture_con):
    first = j.compute_journeys(fixture_con)
    fixture_con.execute("delete from pipeline.event_topics where project_id = ?", [fx.TRIALCO])
    write_session_steps(fixture_con)
    second = j.compute_journeys(fixture_con)
    assert second["journey_topic_stats"] == first["journey_topic_stats"] - 1
    (n,) = fixture_con.execute("select count(*) from pipeline.journey_paths").fetchone()
    assert n == second["journey_paths"]
    third = j.compute_journeys(fixture_con)
    walked = ("sessions_walked", "users_walked")
    assert {k: v for k, v in third.items() if k not in walked} == {
        k: v for k, v in second.items() if k not in walked}
    assert (third["sessions_walked"], third["users_walked"]) == (0, 0)


def journey_tables(con) -> tuple[list, list]:
    return (sorted(con.execute("select * from pipeline.journey_paths").fetchall(), key=repr),
            sorted(con.execute("select * from pipeline.journey_topic_stats").fetchall(), key=repr))


def test_compute_journeys_walks_only_changed_journeys_and_counts_as_from_scratch(fixture_con):
    from datetime import timedelta

    j.compute_journeys(fixture_con)
    # A new session for u4 (1 > 0), and s5's Unclustered text found topic 2.
    at = fx.NOW + timedelta(hours=1)
    for step, topic in enumerate((1, 0)):
        event_id = f"evt_acme_s9_{step}"
        fixture_con.execute(
            "insert into raw.events values (?, ?, 'turret', null, 'user_message', 's9', 'u4', false, false, "
            "?, ?, '{}', 'seg', 1)", [fx.ACME, event_id, at + timedelta(minutes=step), at])
        fixture_con.execute(
            "insert into pipeline.event_topics values (?, ?, 'prompt', ?, 'hdbscan', 0.9, 'r2')",
            [fx.ACME, event_id, topic])
    fixture_con.execute("update pipeline.event_topics set topic_id = 2 where event_id = 'evt_acme_s5_0'")
    write_session_steps(fixture_con)
    counts = j.compute_journeys(fixture_con)
    assert (counts["sessions_walked"], counts["users_walked"]) == (2, 2)  # s9, s5; u4, u3
    incremental = journey_tables(fixture_con)
    fixture_con.execute("delete from pipeline.journey_parts")
    assert j.compute_journeys(fixture_con)["sessions_walked"] == 9
    assert journey_tables(fixture_con) == incremental
    paths = {tuple(p[4]): p[5] for p in incremental[0] if p[0] == fx.ACME and p[2] == "session"}
    assert paths[(1, 0)] == 1 and paths[(2, 0)] == 1 and (-1, 0) not in paths


def test_compute_journeys_on_empty_warehouse_writes_empty_tables(tmp_path):
    con = duckdb.connect(str(fx.build_empty_file(tmp_path / "e.duckdb")))
    try:
        assert j.compute_journeys(con)["journey_paths"] == 0
        assert con.execute("select count(*) from pipeline.journey_topic_stats").fetchone() == (0,)
    finally:
        con.close()
