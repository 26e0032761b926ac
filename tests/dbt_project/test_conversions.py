"""Trieve bodies kept whole and conversions by topic, through the real path: events sent to the ingest API
(both contracts), sealed and loaded by the loader, topics given as the topic engine writes them, then
`dbt build` (dbt-duckdb) and the staging and mart tables read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pytest
from turret.dbt import run_dbt
from turret.settings import Settings

pytestmark = pytest.mark.slow

SEARCH_A = "aaaaaaaa-0000-4000-8000-00000000000a"
RAG_THREAD = "cccccccc-0000-4000-8000-00000000000c"
CHUNK = "0b5e1a3c-2d4f-4a6b-8c9d-0e1f2a3b4c5d"


def request(request_id: str, kind: str = "search") -> dict:
    return {"request_id": request_id, "request_type": kind}


# Every field of each of the eight event types (../shared/seeds/004), as an app would send them.
BODIES = {
    "search": {"event_type": "search", "request_id": SEARCH_A, "query": "red running shoes", "tokens": 12,
               "latency": 35.5, "search_type": "search", "top_score": 0.91, "results": [{"id": 1}, "x"],
               "query_rating": {"rating": 4, "note": "good", "metadata": {"k": 1}},
               "request_params": {"page": 1}, "user_id": "shopper-9", "metadata": {"ab": "b"}},
    "view": {"event_type": "view", "event_name": "viewed", "items": ["sku-1", "sku-2"], "location": "home",
             "metadata": {"any": ["thing"]}, "request": request(SEARCH_A), "user_id": "shopper-9"},
    "click": {"event_type": "click", "event_name": "clicked",
              "clicked_items": {"chunk_id": CHUNK, "position": 2}, "is_conversion": False,
              "location": "results",
              "metadata": {"m": 1}, "request": request(SEARCH_A), "user_id": "shopper-9"},
    "add_to_cart": {"event_type": "add_to_cart", "event_name": "cart", "items": ["sku-1"],
                    "is_conversion": False, "location": "pdp", "metadata": None, "request": request(SEARCH_A),
                    "user_id": "shopper-9"},
    "purchase": {"event_type": "purchase", "event_name": "bought", "location": "checkout",
                 "items": [{"tracking_id": "sku-1", "revenue": 9.5}, {"tracking_id": "sku-2", "revenue": 1}],
                 "metadata": {"order": "o-1"}, "request": request(SEARCH_A), "user_id": "shopper-9"},
    "filter_clicked": {"event_type": "filter_clicked", "event_name": "filter", "is_conversion": False,
                       "items": {"tag_set::color": "red"}, "location": "sidebar",
                       "request": request(SEARCH_A),
                       "user_id": "shopper-9"},
    "rag": {"event_type": "rag", "user_message": "what is the return policy?", "tokens": 300,
            "llm_response": "30 days", "rag_type": "chosen_chunks", "hallucination_score": 0.1,
            "detected_hallucinations": ["x"], "search_id": SEARCH_A, "topic_id": RAG_THREAD,
            "results": [], "query_rating": None, "metadata": {"k": "v"}, "user_id": "shopper-9"},
    "recommendation": {"event_type": "recommendation", "positive_ids": [CHUNK], "negative_ids": [CHUNK],
                       "positive_tracking_ids": ["t1"], "negative_tracking_ids": ["t2"],
                       "recommendation_type": "Chunk", "top_score": 0.4, "results": [{"r": 1}],
                       "request_params": {"n": 3}, "metadata": {"why": "similar"}, "user_id": "shopper-9"},
}

# Each sent field -> (staging column, the value it must hold there).
COLUMNS = {
    "event_name": "event_name", "items": "items", "location": "location", "metadata": "event_metadata",
    "user_id": "sent_user_id", "is_conversion": "is_conversion", "query": "query", "tokens": "tokens",
    "latency": "latency", "search_type": "search_type", "top_score": "top_score", "results": "results",
    "request_params": "request_params", "request_id": "sent_request_id", "user_message": "user_message",
    "llm_response": "llm_response", "rag_type": "rag_type", "hallucination_score": "hallucination_score",
    "detected_hallucinations": "detected_hallucinations", "search_id": "search_id",
    "topic_id": "chat_topic_id", "recommendation_type": "recommendation_type", "positive_ids": "positive_ids",
    "negative_ids": "negative_ids",
    "positive_tracking_ids": "positive_tracking_ids", "negative_tracking_ids": "negative_tracking_ids",
    "event_type": "event_type",
}
NESTED = {  # fields of nested objects -> staging columns
    ("clicked_items", "chunk_id"): "clicked_chunk_id", ("clicked_items", "position"): "clicked_position",
    ("query_rating", "rating"): "query_rating", ("query_rating", "note"): "query_rating_note",
    ("query_rating", "metadata"): "query_rating_metadata", ("request", "request_id"): "followed_request_id",
    ("request", "request_type"): "followed_request_type",
}
JSON_COLUMNS = {"items", "event_metadata", "results", "request_params", "query_rating_metadata"}


def _put(client, key, project_id, body):
    response = client.put("/api/analytics/events", data=json.dumps(body), content_type="application/json",
                          headers={"Authorization": key, "TR-Dataset": project_id})
    assert response.status_code == 204, response.get_data(as_text=True)
    return response.headers.get("TR-Request-Id")


def _track(client, key, body):
    response = client.post("/track", data=json.dumps(body), content_type="application/json",
                           headers={"X-API-Key": key})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Events through the API, loaded by the loader, topics as the topic engine writes them, dbt build."""
    from turret import loader, warehouse
    from turret.controlplane import ControlPlane
    from turret.landing import utc_now

    from ingest_api import create_app, shutdown

    settings = Settings(home=tmp_path_factory.mktemp("home"))
    app = create_app({"TESTING": True, "settings": settings})
    client = app.test_client()
    plane = app.extensions["turret"].control_plane
    project, key = plane.create_project("shop", "pro")
    pid = project.project_id
    _plans_to_compare(plane)
    ids = {name: _put(client, key, pid, body) for name, body in BODIES.items()}
    # A second search (request id generated by Turret, answered in TR-Request-Id) with one click.
    ids["search_b"] = _put(client, key, pid, {"event_type": "search", "query": "trail shoes", "tokens": 3,
                                              "search_type": "autocomplete"})
    _put(client, key, pid,
         {"event_type": "click", "event_name": "clicked_b", "request": request(ids["search_b"])})
    # A third search that nothing follows.
    ids["search_c"] = _put(client, key, pid, {"event_type": "search", "query": "socks", "tokens": 1})
    # A click on the RAG answer: its request is the RAG event, whose session is the chat thread, not the
    # request id the click landed under; they join on the request id alone.
    _put(client, key, pid, {"event_type": "click", "event_name": "clicked_rag",
                            "request": request(ids["rag"], "rag")})
    # Turret /track: a message, an acknowledgement, then a purchase with revenue in the same session.
    first = _track(client, key, {"name": "user_message", "metadata": {"prompt": "How much is the pro plan?"}})
    session = {"session_id": first["session_id"], "user_id": first["user_id"]}
    _track(client, key, {"name": "purchase", "metadata": {"revenue": 20, "plan": "pro"}, **session})
    _track(client, key, {"name": "Conversion", "metadata": {"revenue": "lots"}, **session})
    not_a_conversion = {"revenue": 5, "is_conversion": False, "plan": "team"}
    _track(client, key, {"name": "purchase", "metadata": not_a_conversion, **session})
    shutdown(app)

    con = duckdb.connect(str(settings.warehouse))
    try:
        warehouse.ensure_schema(con)
        from turret.landing import seal_idle

        seal_idle(settings.landing_root, before=utc_now())
        stats = loader.load_landing(con, settings.landing_root)
        assert stats.rows_loaded == len(BODIES) + 8 and stats.rows_quarantined == 0
        loader.sync_projects(con, ControlPlane.from_settings(settings))
        events = dict(con.execute("select event_id, name from raw.events").fetchall())
        messages = {  # event_id -> (field, topic) as the topic engine would assign them
            ids["search"]: ("query", 0), ids["search_b"]: ("query", 1), ids["rag"]: ("user_message", 0),
            first["event_id"]: ("prompt", 2), ids["search_c"]: ("query", 3),
        }
        assert set(messages) <= set(events)
        con.executemany(
            "insert into pipeline.event_topics"
            " (project_id, event_id, field, topic_id, assigned_by, similarity, run_id)"
            " values (?, ?, ?, ?, 'hdbscan', 0.9, 'r1')",
            [(pid, event_id, field, topic) for event_id, (field, topic) in messages.items()],
        )
        con.executemany(
            "insert into pipeline.topics"
            " (project_id, field, topic_id, label, keywords, label_source, size, status)"
            " values (?, ?, ?, ?, '[]', 'keywords', 1, 'active')",
            [(pid, field, topic, f"Topic {topic}") for field, topic in set(messages.values())],
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        con.executemany(
            "insert into pipeline.fields (project_id, field, detected_type, override_type, effective_type,"
            " n_values, n_distinct, examples, updated_at) values (?, ?, ?, null, ?, 1, 1, '[]', ?)",
            [(pid, "search_type", "enum", "enum", now), (pid, "query", "text", "text", now),
             (pid, "user_message", "text", "text", now), (pid, "prompt", "text", "text", now)],
        )
    finally:
        con.close()
    # The models these tests read and everything upstream of them, with their tests.
    selected = "+agg_topic_conversions_daily +agg_topic_conversions_segments +fct_quota_usage"
    assert run_dbt(["build", "--select", selected], settings).success
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con, pid, ids, settings
    con.close()


def _plans_to_compare(plane):
    """Projects whose quota terms the API and the mart once disagreed on: an override, an ended trial, a
    changed plan."""
    from datetime import timedelta

    import sqlalchemy as sa
    from turret.controlplane import projects_table

    plane.create_project("capped", "pro", monthly_limit=42)
    plane.create_project("ent", "enterprise", monthly_limit=7)
    plane.create_project("expired", "trial")
    with plane.engine.begin() as con:
        con.execute(
            sa.update(projects_table).where(projects_table.c.name == "expired")
            .values(created_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=20))
        )
    plane.create_project("upgraded", "trial")
    plane.set_plan("upgraded", "business", monthly_limit=1000)


def _staged(con, event_id):
    cursor = con.execute("select * from staging.stg_raw__event_payloads where event_id = ?", [event_id])
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


@pytest.mark.parametrize("event_type", sorted(BODIES))
def test_every_field_of_each_trieve_type_reaches_staging_typed(built, event_type):
    con, _, ids, _ = built
    body = BODIES[event_type]
    event_id = ids[event_type] or con.execute(
        "select event_id from raw.events where event_type = ? and name = ?",
        [event_type, body.get("event_name", event_type)],
    ).fetchone()[0]
    row = _staged(con, event_id)
    assert json.loads(row["payload"]) == body  # the body exactly as sent
    checked = 0
    for field, value in body.items():
        if field in {outer for outer, _ in NESTED}:
            for (outer, inner), column in NESTED.items():
                if outer == field:
                    got = row[column]
                    if column in JSON_COLUMNS and got is not None:
                        got = json.loads(got)
                    assert got == (value or {}).get(inner), (field, inner)
                    checked += 1
            continue
        column = COLUMNS[field]
        got = row[column]
        if column in JSON_COLUMNS:
            got = None if got is None else json.loads(got)
        assert got == value, field
        checked += 1
    assert checked >= len(body)
    if event_type == "purchase":
        assert row["revenue"] == 10.5
        assert row["purchase_items"] == [{"tracking_id": "sku-1", "revenue": 9.5},
                                         {"tracking_id": "sku-2", "revenue": 1.0}]
    if event_type == "filter_clicked":
        assert row["filters"] == {"tag_set::color": "red"}
    if event_type in ("view", "add_to_cart"):
        assert row["item_ids"] == body["items"] and row["item_count"] == len(body["items"])
    if event_type in ("search", "rag", "recommendation"):
        assert row["request_id"] == event_id  # a request's id is its event id


def test_outcomes_join_their_request_whatever_their_sessions(built):
    con, pid, ids, _ = built
    rows = con.execute(
        """select o.outcome_type, a.message_event_id, a.attributed_by
           from intermediate.int_outcome_events o
           left join intermediate.int_outcome_events_attributed a
             on a.project_id = o.project_id and a.outcome_event_id = o.event_id
           where o.contract = 'trieve' order by all"""
    ).fetchall()
    assert sorted(rows) == sorted([
        ("add_to_cart", SEARCH_A, "request"), ("click", SEARCH_A, "request"),
        ("click", ids["search_b"], "request"), ("click", ids["rag"], "request"),
        ("purchase", SEARCH_A, "request"), ("view", SEARCH_A, "request"),
    ])
    # The click on the RAG answer landed in another session than the RAG question and still joined.
    sessions = dict(con.execute("select event_id, session_id from raw.events").fetchall())
    assert sessions[ids["rag"]] == RAG_THREAD
    click = con.execute(
        "select outcome_event_id from intermediate.int_outcome_events_attributed where message_event_id = ?",
        [ids["rag"]],
    ).fetchone()[0]
    assert sessions[click] == ids["rag"] != RAG_THREAD


def test_conversions_by_topic_and_day(built):
    con, pid, ids, _ = built
    cursor = con.execute(
        "select * from marts.agg_topic_conversions_daily where project_id = ? order by field, topic_id", [pid]
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    got = {(r["field"], r["topic_id"]): r for r in rows}
    assert set(got) == {("prompt", 2), ("query", 0), ("query", 1), ("query", 3), ("user_message", 0)}
    nothing = got[("query", 3)]  # a search nothing followed: zeros, not nulls
    assert (nothing["messages"], nothing["views"], nothing["clicks"], nothing["click_through_rate"],
            nothing["conversions"], nothing["revenue"]) == (1, 0, 0, 0.0, 0, 0.0)
    today = got[("query", 0)]["message_date"]
    search_a = got[("query", 0)]
    assert (search_a["topic_label"], search_a["message_date"], search_a["messages"]) == ("Topic 0", today, 1)
    measures = ("views", "clicks", "messages_clicked", "click_through_rate", "add_to_carts", "purchases",
                "conversions", "messages_converted", "revenue")
    assert {k: search_a[k] for k in measures} == {
        "views": 1, "clicks": 1, "messages_clicked": 1, "click_through_rate": 1.0, "add_to_carts": 1,
        "purchases": 1, "conversions": 1, "messages_converted": 1, "revenue": 10.5,
    }
    assert 0 < search_a["median_seconds_to_conversion"] < 120
    search_b = got[("query", 1)]
    assert (search_b["clicks"], search_b["conversions"], search_b["revenue"]) == (1, 0, 0.0)
    assert search_b["median_seconds_to_conversion"] is None
    rag = got[("user_message", 0)]
    assert (rag["messages"], rag["clicks"], rag["conversions"]) == (1, 1, 0)
    # /track convention: purchase (revenue 20) and Conversion (no numeric revenue) count; the purchase sent
    # with is_conversion false is a purchase but not a conversion, and its revenue still counts.
    chat = got[("prompt", 2)]
    measures = (chat["purchases"], chat["conversions"], chat["messages_converted"], chat["revenue"])
    assert measures == (2, 2, 1, 25.0)
    assert chat["conversion_rate"] == 1.0


def test_conversions_per_enum_segment(built):
    con, pid, _, _ = built
    rows = con.execute(
        """select field, topic_id, enum_field, enum_value, messages, clicks, conversions, revenue
           from marts.agg_topic_conversions_segments where project_id = ? and enum_field = 'search_type'
           order by all""", [pid]
    ).fetchall()
    assert rows == [("query", 0, "search_type", "search", 1, 1, 1, 10.5),
                    ("query", 1, "search_type", "autocomplete", 1, 1, 0, 0.0)]


def test_quota_mart_and_api_apply_the_same_plan_rules(built):
    """Overrides, ended trials and plan changes: the mart's period and limit are the API's (turret.plans)."""
    from turret.controlplane import ControlPlane

    con, _, _, settings = built
    plane = ControlPlane.from_settings(settings)
    mart = {
        name: (start, end, limit, as_of)
        for name, start, end, limit, as_of in con.execute(
            "select project_name, period_start, period_end, event_limit, as_of_at from marts.fct_quota_usage"
        ).fetchall()
    }
    assert set(mart) == {"shop", "capped", "ent", "expired", "upgraded"}
    for project in plane.list_projects():
        start, end, limit, as_of = mart[project.name]
        period = plane.period(project, as_of.replace(tzinfo=UTC))
        expected = (period.start.replace(tzinfo=None), period.end.replace(tzinfo=None), period.limit)
        assert (start, end, limit) == expected, project.name
    assert {name: row[2] for name, row in mart.items()} == {
        "shop": 1_000_000, "capped": 42, "ent": 7, "expired": 0, "upgraded": 1000,
    }
    plane.dispose()
