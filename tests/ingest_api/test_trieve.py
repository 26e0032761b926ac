"""Contract tests for the Trieve-compatible PUT /api/analytics/events (docs seed 004)."""

from __future__ import annotations

import copy
import uuid

import pytest

REQ_ID = "5f0c6a2e-8a4b-4c1d-9e2f-1a2b3c4d5e6f"
CHUNK = "0b5e1a3c-2d4f-4a6b-8c9d-0e1f2a3b4c5d"
REQUEST = {"request_id": REQ_ID, "request_type": "search"}

# One valid body per variant: every optional field filled in, to exercise the nested types.
VALID = {
    "view": {"event_type": "view", "event_name": "viewed", "items": ["a", "b"], "location": "home",
             "metadata": {"any": ["thing"]}, "request": REQUEST, "user_id": "u1"},
    "add_to_cart": {"event_type": "add_to_cart", "event_name": "cart", "items": ["sku-1"],
                    "is_conversion": True,
                    "location": None, "request": None, "user_id": None},
    "click": {"event_type": "click", "event_name": "clicked",
              "clicked_items": {"chunk_id": CHUNK, "position": 2},
              "is_conversion": False, "request": REQUEST},
    "purchase": {"event_type": "purchase", "event_name": "bought",
                 "items": [{"tracking_id": "sku-1", "revenue": 9.5}, {"tracking_id": "sku-2", "revenue": 1}]},
    "filter_clicked": {"event_type": "filter_clicked", "event_name": "filter",
                       "items": {"tag_set::color": "red"}},
    "search": {"event_type": "search", "query": "red running shoes", "tokens": 12, "latency": 35.5,
               "search_type": "search_over_groups", "top_score": 0.91, "results": [{"id": 1}, "x"],
               "query_rating": {"rating": 4, "note": None, "metadata": {"k": 1}},
               "request_params": {"page": 1},
               "user_id": "shopper-9"},
    "rag": {"event_type": "rag", "user_message": "what is the return policy?", "tokens": 300,
            "llm_response": "30 days", "rag_type": "chosen_chunks", "hallucination_score": 0.1,
            "detected_hallucinations": ["x"], "search_id": CHUNK, "topic_id": REQ_ID, "results": []},
    "recommendation": {"event_type": "recommendation", "positive_ids": [CHUNK], "negative_ids": None,
                       "positive_tracking_ids": ["t"], "recommendation_type": "Chunk", "top_score": 0.4},
}

# Minimal bodies: only the required fields.
MINIMAL = {
    "view": {"event_type": "view", "event_name": "v", "items": []},
    "add_to_cart": {"event_type": "add_to_cart", "event_name": "c", "items": []},
    "click": {"event_type": "click", "event_name": "c"},
    "purchase": {"event_type": "purchase", "event_name": "p", "items": []},
    "filter_clicked": {"event_type": "filter_clicked", "event_name": "f", "items": {}},
    "search": {"event_type": "search", "query": "q", "tokens": 0},
    "rag": {"event_type": "rag", "user_message": "m", "tokens": 0},
    "recommendation": {"event_type": "recommendation"},
}

REQUIRED = {
    "view": ["event_name", "items"], "add_to_cart": ["event_name", "items"], "click": ["event_name"],
    "purchase": ["event_name", "items"], "filter_clicked": ["event_name", "items"],
    "search": ["query", "tokens"], "rag": ["user_message", "tokens"], "recommendation": [],
}

# (variant, path to set, bad value, words in the message)
INVALID = [
    ("view", ["items"], "a", "items must be an array"),
    ("view", ["items", 0], 1, "items[0] must be a string"),
    ("view", ["request"], {"request_type": "search"}, "request.request_id is required"),
    ("view", ["request", "request_id"], "not-a-uuid", "request.request_id must be a UUID"),
    ("view", ["request", "request_type"], "browse",
     "request.request_type must be one of search, rag, recommendation"),
    ("view", ["location"], 5, "location must be a string"),
    ("view", ["user_id"], 7, "user_id must be a string"),
    ("view", ["user_id"], "u" * 257, "user_id is 257 characters; the maximum is 256"),
    ("view", ["event_name"], "", "event_name must not be empty"),
    ("view", ["event_name"], "e" * 201, "event_name is 201 characters; the maximum is 200"),
    ("add_to_cart", ["is_conversion"], "yes", "is_conversion must be a boolean"),
    ("click", ["clicked_items"], [{"chunk_id": CHUNK, "position": 1}], "clicked_items must be an object"),
    ("click", ["clicked_items", "position"], 1.5, "clicked_items.position must be an integer"),
    ("click", ["clicked_items", "position"], 2**31, "clicked_items.position must be between"),
    ("click", ["clicked_items", "chunk_id"], None, "clicked_items.chunk_id must be a string"),
    ("purchase", ["items", 0, "revenue"], "9.5", "items[0].revenue must be a number"),
    ("purchase", ["items", 1], {"revenue": 1}, "items[1].tracking_id is required"),
    ("filter_clicked", ["items"], ["a"], "items must be an object"),
    ("filter_clicked", ["items", "tag_set::color"], 3, "items.tag_set::color must be a string"),
    ("search", ["tokens"], -1, "tokens must be between 0 and"),
    ("search", ["tokens"], True, "tokens must be an integer"),
    ("search", ["tokens"], "12", "tokens must be an integer"),
    ("search", ["latency"], "fast", "latency must be a number"),
    ("search", ["search_type"], "keyword", "search_type must be one of search, search_over_groups"),
    ("search", ["query_rating"], {"note": "x"}, "query_rating.rating is required"),
    ("search", ["query_rating", "note"], 5, "query_rating.note must be a string"),
    ("search", ["results"], {"a": 1}, "results must be an array"),
    ("search", ["query"], "q" * 10_001, "query is 10001 characters; the maximum is 10000"),
    ("rag", ["rag_type"], "some_chunks", "rag_type must be one of chosen_chunks, all_chunks"),
    ("rag", ["search_id"], "abc", "search_id must be a UUID"),
    ("rag", ["topic_id"], 12, "topic_id must be a string"),
    ("rag", ["detected_hallucinations", 0], None, "detected_hallucinations[0] must be a string"),
    ("rag", ["hallucination_score"], [], "hallucination_score must be a number"),
    ("rag", ["llm_response"], {}, "llm_response must be a string"),
    ("recommendation", ["positive_ids", 0], "nope", "positive_ids[0] must be a UUID"),
    ("recommendation", ["negative_tracking_ids"], "t", "negative_tracking_ids must be an array"),
    ("recommendation", ["recommendation_type"], "chunk", "recommendation_type must be one of Chunk, Group"),
    ("recommendation", ["top_score"], False, "top_score must be a number"),
]


def put(client, body, key, dataset, **headers):
    all_headers = {"TR-Dataset": dataset}
    if key is not None:
        all_headers["Authorization"] = key
    all_headers.update(headers)
    return client.put("/api/analytics/events", json=body, headers=all_headers)


def assert_message(response, status, *words):
    assert response.status_code == status, response.data
    body = response.get_json()
    assert set(body) == {"message"}, body
    for word in words:
        assert word in body["message"], (word, body["message"])


@pytest.mark.parametrize("variant", sorted(VALID))
def test_every_variant_full_and_minimal_is_accepted(client, api_key, project, landed, variant):
    for body in (VALID[variant], MINIMAL[variant]):
        response = put(client, body, api_key, project.project_id)
        assert response.status_code == 204, response.data
        assert response.data == b""
    records = landed()
    assert [r["payload"] for r in records] == [VALID[variant], MINIMAL[variant]]
    for record in records:
        assert record["contract"] == "trieve" and record["event_type"] == variant
        assert record["project_id"] == project.project_id
        assert record["metadata"]["event_type"] == variant
        assert all(not isinstance(v, dict | list) for v in record["metadata"].values())


@pytest.mark.parametrize("variant", sorted(REQUIRED))
def test_every_required_field_is_required(client, api_key, project, variant):
    for field in REQUIRED[variant] + ["event_type"]:
        body = {k: v for k, v in MINIMAL[variant].items() if k != field}
        assert_message(put(client, body, api_key, project.project_id), 400, f"{field} is required")


@pytest.mark.parametrize("variant, path, value, words", INVALID,
                         ids=[f"{v}-{w[:30]}" for v, _, _, w in INVALID])
def test_invalid_fields(client, api_key, project, landed, variant, path, value, words):
    body = copy.deepcopy(VALID[variant])
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert_message(put(client, body, api_key, project.project_id), 400, words)
    assert landed() == []


@pytest.mark.parametrize("event_type, words", [("page_view", "must be one of view"), (3, "got number"),
                                               (None, "got null")])
def test_unknown_event_type(client, api_key, project, event_type, words):
    assert_message(put(client, {"event_type": event_type}, api_key, project.project_id), 400, words)


def test_not_an_object(client, api_key, project):
    assert_message(put(client, [MINIMAL["search"]], api_key, project.project_id), 400, "JSON object")


def test_unknown_fields_are_allowed_and_kept_in_payload(client, api_key, project, landed):
    body = {**MINIMAL["search"], "extra": {"nested": True}}
    assert put(client, body, api_key, project.project_id).status_code == 204
    assert landed()[0]["payload"]["extra"] == {"nested": True}


def test_search_record_metadata_and_ids(client, api_key, project, landed):
    assert put(client, VALID["search"], api_key, project.project_id).status_code == 204
    [record] = landed()
    assert record["name"] == "search"  # Search has no event_name: the type names it
    assert record["metadata"] == {
        "event_type": "search", "query": "red running shoes", "search_type": "search_over_groups",
        "latency": 35.5, "tokens": 12, "top_score": 0.91, "rating": 4, "results_count": 2,
    }
    assert record["user_id"] == "shopper-9" and record["user_id_generated"] is False
    assert uuid.UUID(record["session_id"]).version == 4 and record["session_id_generated"] is True


def test_rag_uses_topic_id_as_session(client, api_key, project, landed):
    assert put(client, VALID["rag"], api_key, project.project_id).status_code == 204
    [record] = landed()
    assert record["session_id"] == REQ_ID and record["session_id_generated"] is False
    assert record["metadata"]["user_message"] == "what is the return policy?"
    assert "llm_response" not in record["metadata"]
    assert uuid.UUID(record["user_id"]).version == 4 and record["user_id_generated"] is True


def test_request_id_is_the_session_and_event_name_the_name(client, api_key, project, landed):
    assert put(client, VALID["click"], api_key, project.project_id).status_code == 204
    [record] = landed()
    assert record["session_id"] == REQ_ID and record["name"] == "clicked"
    assert record["metadata"] == {"event_type": "click", "request_type": "search", "is_conversion": False,
                                  "position": 2}


def test_purchase_revenue_summed(client, api_key, project, landed):
    assert put(client, VALID["purchase"], api_key, project.project_id).status_code == 204
    assert landed()[0]["metadata"]["revenue"] == 10.5


@pytest.mark.parametrize("form", ["{key}", "Bearer {key}", "bearer  {key}", "ApiKey {key}"])
def test_authorization_forms(client, api_key, project, form):
    assert put(client, MINIMAL["search"], form.format(key=api_key), project.project_id).status_code == 204


@pytest.mark.parametrize("key", [None, "", "Bearer nope", "trt_" + "z" * 40])
def test_bad_key_is_401_message(client, project, key):
    assert_message(put(client, MINIMAL["search"], key, project.project_id), 401, "API key")


def test_dataset_by_id_any_case_and_by_name(client, api_key, project):
    for dataset in (project.project_id, project.project_id.upper(), project.name):
        assert put(client, MINIMAL["search"], api_key, dataset).status_code == 204


@pytest.mark.parametrize("dataset, words", [(None, "TR-Dataset header is required"),
                                            (str(uuid.uuid4()), "not the project of this API key"),
                                            ("other-name", "not the project of this API key")])
def test_dataset_errors(client, api_key, dataset, words):
    headers = {"Authorization": api_key}
    if dataset is not None:
        headers["TR-Dataset"] = dataset
    response = client.put("/api/analytics/events", json=MINIMAL["search"], headers=headers)
    assert_message(response, 400, words)


def test_body_errors_use_trieve_shape(client, api_key, project):
    response = client.put("/api/analytics/events", data="{", content_type="application/json",
                          headers={"Authorization": api_key, "TR-Dataset": project.project_id})
    assert_message(response, 400, "not valid JSON")
    response = client.put("/api/analytics/events", data="{}", content_type="text/plain",
                          headers={"Authorization": api_key, "TR-Dataset": project.project_id})
    assert_message(response, 400, "Content-Type")
    assert_message(client.get("/api/analytics/events"), 405, "GET is not allowed")


def test_quota_applies(client, control_plane):
    project, key = control_plane.create_project("one", "enterprise", monthly_limit=1)
    assert put(client, MINIMAL["search"], key, project.project_id).status_code == 204
    response = put(client, MINIMAL["search"], key, project.project_id)
    assert_message(response, 429, "resets at")
    assert int(response.headers["Retry-After"]) >= 1


def _purchase(*revenues):
    return {"event_type": "purchase", "event_name": "bought",
            "items": [{"tracking_id": f"sku-{i}", "revenue": r} for i, r in enumerate(revenues)]}


@pytest.mark.parametrize("revenues", [(1.7e308,), (1.7e308, -1.7e308), (2**63 - 1,), (2**62, 2**62 - 1)])
def test_purchase_revenue_at_the_limits_is_stored(client, api_key, project, landed, revenues):
    assert put(client, _purchase(*revenues), api_key, project.project_id).status_code == 204
    [record] = landed()
    assert record["metadata"]["revenue"] == sum(revenues)


@pytest.mark.parametrize("revenues, words", [
    ((1.7e308, 1.7e308), "not a finite number"),  # sums to inf: json.dumps(allow_nan=False) would fail
    ((-1.7e308, -1.7e308), "not a finite number"),
    ((2**63 - 1, 1), "64-bit"),
    ((-(2**63), -1), "64-bit"),
])
def test_purchase_revenue_sum_that_cannot_be_stored_is_400(client, api_key, project, landed, revenues, words):
    response = put(client, _purchase(*revenues), api_key, project.project_id)
    assert_message(response, 400, "sum of items[].revenue", "too large", words)
    assert landed() == []


def test_purchase_revenue_overflow_takes_no_quota(client, control_plane):
    project, key = control_plane.create_project("one", "enterprise", monthly_limit=1)
    assert put(client, _purchase(1.7e308, 1.7e308), key, project.project_id).status_code == 400
    assert put(client, _purchase(1.0), key, project.project_id).status_code == 204


def test_unserializable_record_is_400_not_500(app, client, api_key, project, landed, monkeypatch):
    # Whatever validation misses, a record the landing store cannot write as strict JSON is the data's fault.
    import ingest_api.trieve as trieve

    monkeypatch.setattr(trieve, "check_metadata_bounds", lambda metadata, bounds: None)
    response = put(client, _purchase(1.7e308, 1.7e308), api_key, project.project_id)
    assert_message(response, 400, "cannot be stored")
    assert landed() == []
    # The writer carries on.
    assert put(client, _purchase(1.0), api_key, project.project_id).status_code == 204
    assert len(landed()) == 1


def test_a_search_request_id_is_its_event_id_session_and_answer_header(client, api_key, project, landed):
    body = {**VALID["search"], "request_id": REQ_ID.upper()}
    response = put(client, body, api_key, project.project_id)
    assert response.status_code == 204 and response.headers["TR-Request-Id"] == REQ_ID
    [record] = landed()
    assert (record["event_id"], record["session_id"], record["session_id_generated"]) == (
        REQ_ID, REQ_ID, False
    )
    assert record["payload"]["request_id"] == REQ_ID.upper()  # the body as sent


@pytest.mark.parametrize("event_type", ["search", "rag", "recommendation"])
def test_a_request_without_request_id_gets_one_in_the_answer(client, api_key, project, landed, event_type):
    response = put(client, MINIMAL[event_type], api_key, project.project_id)
    generated = response.headers["TR-Request-Id"]
    assert response.status_code == 204 and uuid.UUID(generated).version == 4
    [record] = landed()
    assert record["event_id"] == generated and "request_id" not in record["payload"]
    assert record["session_id"] == generated and record["session_id_generated"] is True


def test_events_following_a_request_are_not_requests(client, api_key, project, landed):
    response = put(client, VALID["click"], api_key, project.project_id)
    assert "TR-Request-Id" not in response.headers
    assert landed()[0]["event_id"].startswith("evt_")


def test_request_id_must_be_a_uuid(client, api_key, project):
    body = {**MINIMAL["search"], "request_id": "search-1"}
    assert_message(put(client, body, api_key, project.project_id), 400, "request_id must be a UUID")
