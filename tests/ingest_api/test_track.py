"""Contract tests for POST /track: every field, every error code, both sides of every limit."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from turret.settings import Settings

LIMITS = Settings()


def post(client, body, key, **kwargs):
    headers = {"X-API-Key": key} if key is not None else {}
    headers.update(kwargs.pop("headers", {}))
    if isinstance(body, bytes | str):
        return client.post("/track", data=body, headers=headers,
                           content_type=kwargs.pop("content_type", "application/json"))
    return client.post("/track", json=body, headers=headers, **kwargs)


def ok_event(**fields):
    event = {"name": "user_message", "metadata": {"prompt": "How do I reset my password?"}}
    event.update(fields)
    return event


def assert_error(response, status, code, *words):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False and body["code"] == code, body
    for word in words:
        assert word in body["error"], (word, body["error"])
    return body


# ---------------------------------------------------------------------------------------------- success


def test_minimal_event_generates_uuid4_ids_and_lands_them(client, api_key, project, landed):
    response = post(client, ok_event(), api_key)
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True and body["message"] == "Event tracked successfully"
    assert uuid.UUID(body["session_id"]).version == 4
    assert uuid.UUID(body["user_id"]).version == 4
    assert body["event_id"].startswith("evt_")
    [record] = landed()
    assert record["event_id"] == body["event_id"]
    assert record["session_id"] == body["session_id"] and record["session_id_generated"] is True
    assert record["user_id"] == body["user_id"] and record["user_id_generated"] is True
    assert record["project_id"] == project.project_id
    assert record["contract"] == "turret" and record["event_type"] is None
    assert record["name"] == "user_message"
    assert record["metadata"] == {"prompt": "How do I reset my password?"}
    assert record["timestamp"] == record["received_at"]
    assert "payload" not in record


def test_given_ids_are_kept_exactly(client, api_key, landed):
    ids = {"session_id": " ticket_12345 ", "user_id": "customer_789 ÿ", "event_id": "my-idempotency-key-1"}
    body = post(client, ok_event(**ids), api_key).get_json()
    assert {k: body[k] for k in ids} == ids
    [record] = landed()
    assert {k: record[k] for k in ids} == ids
    assert record["session_id_generated"] is False and record["user_id_generated"] is False


def test_null_ids_are_generated(client, api_key, landed):
    body = post(client, ok_event(session_id=None, user_id=None, event_id=None, timestamp=None),
                api_key).get_json()
    assert uuid.UUID(body["session_id"]).version == 4
    [record] = landed()
    assert record["session_id_generated"] and record["user_id_generated"]


def test_immediate_retry_is_answered_the_same_written_once_and_not_counted(client, api_key, landed):
    first = post(client, ok_event(event_id="same"), api_key)
    again = post(client, ok_event(event_id="same"), api_key)
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()  # the generated session_id and user_id included
    assert first.get_json()["event_id"] == "same"
    assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]
    assert [r["event_id"] for r in landed()] == ["same"]


def test_retry_after_the_recent_cache_forgot_is_landed_again_for_the_loader(app, client, api_key, landed):
    from ingest_api.idempotency import RecentEvents

    app.extensions["turret"].recent = RecentEvents(max_entries=1)
    for event_id in ("a", "b", "a"):
        assert post(client, ok_event(event_id=event_id), api_key).status_code == 200
    # "a" was evicted by "b": the warehouse still keeps one per (project, event_id) (the loader dedupes).
    assert [r["event_id"] for r in landed()] == ["a", "b", "a"]


def test_same_event_id_in_two_projects_is_two_events(client, control_plane, landed):
    keys = [control_plane.create_project(name, "pro")[1] for name in ("one", "two")]
    for key in keys:
        assert post(client, ok_event(event_id="same"), key).status_code == 200
    assert len(landed()) == 2


def test_retry_of_a_failed_write_is_written(app, client, api_key, landed, monkeypatch):
    from turret.landing import LandingError

    runtime = app.extensions["turret"]
    real_append = runtime.writer.append

    def failing(records):
        raise LandingError("disk full")

    monkeypatch.setattr(runtime.writer, "append", failing)
    assert post(client, ok_event(event_id="k"), api_key).status_code == 503
    monkeypatch.setattr(runtime.writer, "append", real_append)
    assert post(client, ok_event(event_id="k"), api_key).status_code == 200
    assert [r["event_id"] for r in landed()] == ["k"]


def test_metadata_scalars_kept_with_types(client, api_key, landed):
    metadata = {"prompt": "hi", "platform": "web", "n": 3, "score": 0.5, "flag": False, "none": None}
    assert post(client, ok_event(metadata=metadata), api_key).status_code == 200
    assert landed()[0]["metadata"] == metadata


@pytest.mark.parametrize(
    "sent, expected",
    [
        ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000000Z"),
        ("2024-02-29T23:59:59+02:00", "2024-02-29T21:59:59.000000Z"),
        ("2024-02-29T23:59:59.123456", "2024-02-29T23:59:59.123456Z"),  # no offset: UTC
        ("2001-01-01", "2001-01-01T00:00:00.000000Z"),  # backfill, date only
    ],
)
def test_timestamp_parsed_to_utc(client, api_key, landed, sent, expected):
    assert post(client, ok_event(timestamp=sent), api_key).status_code == 200
    assert landed()[0]["timestamp"] == expected


def test_charset_parameter_allowed(client, api_key):
    raw = json.dumps(ok_event())
    assert post(client, raw, api_key, content_type="application/json; charset=UTF-8").status_code == 200


def test_rate_limit_headers_on_success(client, api_key):
    response = post(client, ok_event(), api_key)
    assert response.headers["X-RateLimit-Limit"] == "1000000"
    assert int(response.headers["X-RateLimit-Remaining"]) < 1_000_000
    reset = datetime.fromtimestamp(int(response.headers["X-RateLimit-Reset"]), UTC)
    assert reset > datetime.now(UTC) and reset.day == 1


# ---------------------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("key", [None, "", "trt_" + "x" * 40, "not-a-key"])
def test_missing_or_unknown_key_is_401(client, key):
    assert_error(post(client, ok_event(), key), 401, "INVALID_API_KEY")


def test_revoked_key_is_401(client, control_plane, api_key):
    control_plane.revoke_key(api_key)
    assert_error(post(client, ok_event(), api_key), 401, "INVALID_API_KEY", "revoked")


def test_key_checked_before_body(client):
    # Not JSON at all, and over the size limit: the missing key is still what is reported.
    assert_error(post(client, b"{not json", None), 401, "INVALID_API_KEY")
    big = b"x" * (LIMITS.max_body_bytes + 1)
    assert_error(post(client, big, "bad"), 401, "INVALID_API_KEY")


# ------------------------------------------------------------------------------------------- body format


def test_body_size_limit_both_sides(client, api_key):
    limit = LIMITS.max_body_bytes
    shell = json.dumps(ok_event(metadata={"prompt": "hi", "pad": ""}))
    exact = shell.replace('"pad": ""', '"pad": "' + " " * (limit - len(shell)) + '"')
    assert len(exact.encode()) == limit
    # Accepted by the size check; refused after, for a text over max_text_length: proves it was read.
    assert_error(post(client, exact, api_key), 413, "TEXT_TOO_LONG", "metadata.pad")
    over = exact.replace('"pad": "', '"pad": " ', 1)
    assert_error(post(client, over, api_key), 413, "INVALID_REQUEST", f"request body exceeds {limit} bytes")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]
)
def test_wrong_content_type(client, api_key, content_type):
    assert_error(post(client, json.dumps(ok_event()), api_key, content_type=content_type),
                 400, "INVALID_REQUEST", "Content-Type" if "charset" not in content_type else "charset")


def test_missing_content_type(client, api_key):
    response = client.post("/track", data=json.dumps(ok_event()), headers={"X-API-Key": api_key})
    assert_error(response, 400, "INVALID_REQUEST", "Content-Type")


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf8", "Application/JSON", "application/json ; charset=\"UTF-8\"",
    "application/json; charset=utf_8",
])
def test_every_spelling_of_json_in_utf8_is_accepted(client, api_key, content_type):
    # SDKs' usual spellings skip header parsing; every other one goes through the full parser.
    assert post(client, json.dumps(ok_event()), api_key, content_type=content_type).status_code == 200


def test_a_body_shorter_than_its_content_length_is_refused_and_not_stored(client, api_key, landed):
    raw = json.dumps(ok_event()).encode()
    response = client.post("/track", data=raw, content_type="application/json",
                           headers={"X-API-Key": api_key},
                           environ_overrides={"CONTENT_LENGTH": str(len(raw) + 10)})
    assert_error(response, 400, "INVALID_REQUEST", f"ended after {len(raw)} of the {len(raw) + 10} bytes")
    assert landed() == []


def test_a_chunked_body_is_read_and_limited_while_reading(client, api_key, landed):
    raw = json.dumps(ok_event()).encode()

    def chunked(data):
        # As gunicorn passes a chunked body: de-chunked, terminated, no Content-Length.
        environ = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}
        return client.post("/track", input_stream=io.BytesIO(data), content_type="application/json",
                           headers={"X-API-Key": api_key, "Transfer-Encoding": "chunked"},
                           environ_overrides=environ)

    assert chunked(raw).status_code == 200
    assert len(landed()) == 1
    limit = LIMITS.max_body_bytes
    shell = json.dumps(ok_event(metadata={"prompt": "hi", "pad": ""}))
    exact = shell.replace('"pad": ""', '"pad": "' + " " * (limit - len(shell)) + '"').encode()
    assert len(exact) == limit
    assert_error(chunked(exact), 413, "TEXT_TOO_LONG", "metadata.pad")  # read whole, then validated
    over = exact.replace(b'"pad": "', b'"pad": " ', 1)
    assert_error(chunked(over), 413, "INVALID_REQUEST", f"request body exceeds {limit} bytes")
    assert len(landed()) == 1


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"name": "a", "name": "b", "metadata": {"p": "x"}}', "twice"),
        (b'{"name": "a", "metadata": {"p": "x", "n": NaN}}', "NaN"),
        (b'{"name": "a", "metadata": {"p": "x", "n": Infinity}}', "Infinity"),
        (b'{"name": "a", "metadata": {"p": "x", "n": 1e999}}', "finite"),
        (b'{"name": "a", "metadata": {"p": "\\ud800"}}', "surrogate"),
        (b'{"name": "a", "metadata": {"p": "x", "n": 99999999999999999999}}', "64-bit"),
        (b"[" * 5000 + b"]" * 5000, "deeper"),
    ],
)
def test_malformed_json(client, api_key, raw, words):
    assert_error(post(client, raw, api_key), 400, "INVALID_REQUEST", words)


def test_unknown_top_level_field_rejected(client, api_key):
    body = assert_error(post(client, ok_event(sesion_id="typo"), api_key), 400, "INVALID_REQUEST",
                        "sesion_id")
    assert body["field"] == "sesion_id"


# ------------------------------------------------------------------------------------------------- name


@pytest.mark.parametrize("event", [{"metadata": {"p": "x"}}, ok_event(name=None), ok_event(name=""),
                                   ok_event(name="  \t")])
def test_name_missing(client, api_key, event):
    body = assert_error(post(client, event, api_key), 400, "MISSING_REQUIRED_FIELD", "name")
    assert body["field"] == "name"


@pytest.mark.parametrize("name", [1, True, ["a"], {"a": 1}])
def test_name_wrong_type(client, api_key, name):
    assert_error(post(client, ok_event(name=name), api_key), 400, "INVALID_REQUEST", "name must be a string")


def test_name_length_both_sides(client, api_key):
    assert post(client, ok_event(name="n" * 200), api_key).status_code == 200
    assert_error(post(client, ok_event(name="n" * 201), api_key), 400, "INVALID_REQUEST", "201", "200")


# -------------------------------------------------------------------------------------------------- ids


@pytest.mark.parametrize("field", ["session_id", "user_id", "event_id"])
def test_id_length_both_sides(client, api_key, landed, field):
    n = LIMITS.max_id_length
    assert post(client, ok_event(**{field: "i" * n}), api_key).get_json()[field] == "i" * n
    body = assert_error(post(client, ok_event(**{field: "i" * (n + 1)}), api_key), 400, "INVALID_REQUEST",
                        field, str(n + 1), str(n))
    assert body["field"] == field
    assert len(landed()) == 1


@pytest.mark.parametrize("field", ["session_id", "user_id", "event_id"])
@pytest.mark.parametrize("value, words", [("", "empty"), ("   ", "empty"), (123, "string"), (True, "boolean"),
                                          (["a"], "array"), ({"a": "b"}, "object"), (1.5, "number")])
def test_id_invalid(client, api_key, field, value, words):
    assert_error(post(client, ok_event(**{field: value}), api_key), 400, "INVALID_REQUEST", field, words)


# -------------------------------------------------------------------------------------------- timestamp


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "1700000000", "", "2024-01-01T25:00"])
def test_timestamp_not_iso(client, api_key, value):
    assert_error(post(client, ok_event(timestamp=value), api_key), 400, "INVALID_REQUEST", "timestamp",
                 "ISO 8601")


@pytest.mark.parametrize("value", [1700000000, True, {"t": 1}])
def test_timestamp_wrong_type(client, api_key, value):
    assert_error(post(client, ok_event(timestamp=value), api_key), 400, "INVALID_REQUEST", "timestamp")


def test_timestamp_future_skew_both_sides(client, api_key):
    skew = LIMITS.max_future_skew_seconds
    within = (datetime.now(UTC) + timedelta(seconds=skew - 30)).isoformat()
    beyond = (datetime.now(UTC) + timedelta(seconds=skew + 30)).isoformat()
    assert post(client, ok_event(timestamp=within), api_key).status_code == 200
    assert_error(post(client, ok_event(timestamp=beyond), api_key), 400, "INVALID_REQUEST", "future",
                 str(skew))


@pytest.mark.parametrize("sent", ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "1970-01-01"])
def test_timestamp_lower_bound_accepted_side(client, api_key, landed, sent):
    assert post(client, ok_event(timestamp=sent), api_key).status_code == 200
    assert landed()[0]["timestamp"] == "1970-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("sent", [
    "1969-12-31T23:59:59.999999Z",
    "1970-01-01T00:59:59+01:00",
    "0999-06-01T00:00:00Z",
    "0001-01-02",
])
def test_timestamp_before_the_epoch_is_400(client, api_key, landed, sent):
    body = assert_error(post(client, ok_event(timestamp=sent), api_key), 400, "INVALID_REQUEST", "timestamp",
                        "before 1970-01-01T00:00:00Z")
    assert body["field"] == "timestamp"
    assert landed() == []


def test_timestamp_out_of_range_in_utc(client, api_key):
    assert_error(post(client, ok_event(timestamp="0001-01-01T00:00:00+05:00"), api_key), 400,
                 "INVALID_REQUEST", "out of range")


# --------------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("event", [{"name": "n"}, ok_event(metadata=None)])
def test_metadata_missing(client, api_key, event):
    assert_error(post(client, event, api_key), 400, "MISSING_REQUIRED_FIELD", "metadata")


@pytest.mark.parametrize("metadata", [{}, {"n": 1}, {"p": "", "q": "   "}, {"flag": True, "none": None}])
def test_metadata_without_text(client, api_key, metadata):
    assert_error(post(client, ok_event(metadata=metadata), api_key), 400, "MISSING_REQUIRED_FIELD",
                 "no non-empty string value")


@pytest.mark.parametrize("metadata", ["text", ["a"], 3, True])
def test_metadata_not_object(client, api_key, metadata):
    assert_error(post(client, ok_event(metadata=metadata), api_key), 400, "INVALID_REQUEST",
                 "metadata must be an object")


@pytest.mark.parametrize("value", [{"a": "b"}, ["a"], []])
def test_metadata_nested_rejected(client, api_key, value):
    body = assert_error(post(client, ok_event(metadata={"prompt": "x", "ctx": value}), api_key), 400,
                        "INVALID_REQUEST", "metadata.ctx", "flatten")
    assert body["field"] == "metadata.ctx"


@pytest.mark.parametrize("key", ["", "  "])
def test_metadata_empty_key(client, api_key, key):
    assert_error(post(client, ok_event(metadata={"prompt": "x", key: "y"}), api_key), 400, "INVALID_REQUEST",
                 "empty key")


def test_metadata_key_length_both_sides(client, api_key):
    assert post(client, ok_event(metadata={"k" * 128: "x"}), api_key).status_code == 200
    assert_error(post(client, ok_event(metadata={"k" * 129: "x"}), api_key), 400, "INVALID_REQUEST",
                 "129", "128")


def test_metadata_key_count_both_sides(client, api_key):
    n = LIMITS.max_metadata_keys
    exact = {f"k{i}": "text" for i in range(n)}
    assert post(client, ok_event(metadata=exact), api_key).status_code == 200
    over = {**exact, "one_more": "text"}
    assert_error(post(client, ok_event(metadata=over), api_key), 400, "INVALID_REQUEST", str(n + 1), str(n))


def test_text_length_both_sides(client, api_key, landed):
    n = LIMITS.max_text_length
    assert post(client, ok_event(metadata={"prompt": "a" * n}), api_key).status_code == 200
    body = assert_error(post(client, ok_event(metadata={"prompt": "a" * (n + 1)}), api_key), 413,
                        "TEXT_TOO_LONG", f"metadata.prompt is {n + 1} characters; the maximum is {n}")
    assert body["field"] == "metadata.prompt"
    # Characters, not bytes: a multi-byte text of exactly max characters is fine.
    assert post(client, ok_event(metadata={"prompt": "é" * n}), api_key).status_code == 200
    assert len(landed()) == 2


def test_errors_land_nothing(client, api_key, landed):
    post(client, ok_event(name=""), api_key)
    post(client, ok_event(metadata={"prompt": "a" * (LIMITS.max_text_length + 1)}), api_key)
    assert landed() == []


# ------------------------------------------------------------------------------------------ other errors


def test_not_found_and_method_not_allowed_are_json(client):
    assert_error(client.get("/nope"), 404, "NOT_FOUND", "/nope")
    response = client.get("/track")
    assert_error(response, 405, "METHOD_NOT_ALLOWED", "POST")
    assert "POST" in response.headers["Allow"]


def test_unexpected_error_is_500_without_trace(app, client, api_key, monkeypatch):
    import ingest_api.track as track

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(track, "to_record", boom)
    response = post(client, ok_event(), api_key)
    assert response.status_code == 500
    assert response.get_json() == {"success": False, "error": "internal error", "code": "INTERNAL_ERROR"}
    assert b"secret" not in response.data and b"Traceback" not in response.data
