"""The strict JSON reader (ingest_api.body): the fast path (byte scan, no walk) and the full walk agree."""

from __future__ import annotations

import json

import pytest

from ingest_api.body import INT64_MAX, INT64_MIN, MAX_JSON_DEPTH, _check_values, parse_json
from ingest_api.errors import ApiError


def nested(depth: int, leaf: str = '"x"') -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


def refused(raw: bytes) -> str | None:
    try:
        parse_json(raw)
    except ApiError as exc:
        return exc.message
    return None


@pytest.mark.parametrize("leaf", ['"x"', '"\\ud83d\\ude00"', "1", "[]", "{}"])
def test_depth_limit_both_sides_on_both_paths(leaf):
    # A surrogate-pair escape sends the document through the full walk; the others through the fast path.
    depths = [d for d in range(MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH + 3)]
    results = {d: refused(nested(d, leaf)) for d in depths}
    for d, message in results.items():
        try:
            _check_values(json.loads(nested(d, leaf)))
            expected = None
        except ApiError as exc:
            expected = exc.message
        assert message == expected, (d, leaf)
    assert results[depths[0]] is None and "deeper" in results[depths[-1]]


def test_wide_documents_take_the_depth_walk_and_pass():
    raw = json.dumps({"events": [{"name": "n", "metadata": {"p": f"[{i}]"}} for i in range(500)]}).encode()
    assert raw.count(b"[") > MAX_JSON_DEPTH
    assert parse_json(raw)["events"][499]["metadata"]["p"] == "[499]"


def test_brackets_inside_a_top_level_string_are_not_nesting():
    assert parse_json(json.dumps("[" * 100).encode()) == "[" * 100


@pytest.mark.parametrize("raw", [b'{"p": "\\ud800"}', b'{"p": "\\uDFFF x"}', b'{"\\ud800": 1}',
                                 b'{"events": [' + b",".join([b'{"p": "ok"}'] * 50)
                                 + b', {"p": "\\ud800"}]}'])
def test_lone_surrogates_refused_anywhere(raw):
    assert "surrogate" in refused(raw)


def test_surrogate_pairs_and_escaped_backslashes_are_fine():
    assert parse_json(b'{"p": "\\ud83d\\ude00"}') == {"p": "\U0001F600"}
    assert parse_json(b'{"p": "\\\\ud800"}') == {"p": "\\ud800"}  # a backslash, then text


@pytest.mark.parametrize("value, ok", [(INT64_MAX, True), (INT64_MAX + 1, False), (INT64_MIN, True),
                                       (INT64_MIN - 1, False), (0, True), (10**40, False)])
def test_int64_both_sides(value, ok):
    message = refused(json.dumps({"n": value}).encode())
    assert (message is None) == ok, message
    if not ok:
        assert "64-bit" in message


def test_huge_integer_literal_is_refused_quickly():
    assert "64-bit" in refused(b'{"n": ' + b"9" * 5000 + b"}")


def test_duplicate_keys_constants_and_overflow_still_refused():
    assert "twice" in refused(b'{"a": 1, "a": 2}')
    assert "NaN" in refused(b'{"a": NaN}')
    assert "finite" in refused(b'{"a": 1e400}')
