"""Pure helpers of bench/journeys_sgd_pipeline.py (no server, no pipeline)."""

from __future__ import annotations

import pytest

from bench.journeys_sgd_pipeline import acknowledged_ids, api_payload, read_outlier_threshold, within_targets


def test_api_payload_keeps_only_api_fields_and_strips_gold():
    record = {
        "event_id": "sgd-dev-1_00000#0", "name": "user_message", "session_id": "s", "user_id": "u",
        "timestamp": "2024-01-01T00:00:00Z", "metadata": {"prompt": "hi", "gold_domain": "X"},
        "gold_domain": "Restaurants", "gold_acts": ["INFORM"], "turn_index": 0, "source_file": "f",
    }
    out = api_payload(record)
    assert out == {"name": "user_message", "session_id": "s", "user_id": "u",
                   "timestamp": "2024-01-01T00:00:00Z", "metadata": {"prompt": "hi"}}
    assert record["metadata"] == {"prompt": "hi", "gold_domain": "X"}  # the input is not modified


def test_acknowledged_ids_in_order():
    answer = {"accepted": 2,
              "results": [{"success": True, "event_id": "a"}, {"success": True, "event_id": "b"}]}
    assert acknowledged_ids(answer, 2) == ["a", "b"]


@pytest.mark.parametrize("answer", [
    {"accepted": 1, "results": [{"success": True, "event_id": "a"}, {"success": False, "error": {}}]},
    {"accepted": 2, "results": [{"success": True, "event_id": "a"}]},
    {"accepted": 2, "results": [{"success": True, "event_id": "a"}, {"success": True, "event_id": "a"}]},
])
def test_acknowledged_ids_refuses_incomplete_batches(answer):
    with pytest.raises(RuntimeError):
        acknowledged_ids(answer, 2)


def test_read_outlier_threshold(tmp_path):
    path = tmp_path / "topic_defaults.py"
    path.write_text("MIN_SAMPLES = 5\n# a comment\nOUTLIER_THRESHOLD = 0.35\n")
    assert read_outlier_threshold(path) == 0.35
    path.write_text("OUTLIER_THRESHOLD: float = 0.4\n")
    assert read_outlier_threshold(path) == 0.4
    path.write_text("OTHER = 1\n")
    assert read_outlier_threshold(path) is None
    assert read_outlier_threshold(tmp_path / "missing.py") is None


def test_within_targets():
    ok = {"js_divergence": 0.2, "switch_f1": 0.65, "switch_rate_ratio": 0.76}
    assert all(within_targets(ok).values())
    bad = {"js_divergence": 0.21, "switch_f1": 0.6, "switch_rate_ratio": 1.3}
    assert not any(within_targets(bad).values())
    assert within_targets({**ok, "switch_rate_ratio": None})["rate_within_25%"] is False
