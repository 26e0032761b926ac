"""``turret cluster`` over small CSV and JSON Lines files: order, ids, unclustered rows, clear errors."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner


@pytest.fixture
def run(turret_home):
    from turret.cli.cluster import cluster

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cluster, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def rows(intent_data):
    """Five intents (100 rows) shuffled, plus an empty text: rows in a fixed, non-sorted order."""
    texts, gold, _ = intent_data
    keep = [i for i, g in enumerate(gold)
            if g in ("refund", "weather", "recipe", "python_error", "translate")]
    order = sorted(keep, key=lambda i: (i * 37) % 101)
    out = [{"id": f"row-{n:03d}", "prompt": texts[i], "gold": gold[i]} for n, i in enumerate(order)]
    out.insert(7, {"id": "row-empty", "prompt": "", "gold": ""})
    return out


def check_output(out_rows, rows):
    assert [r["id"] for r in out_rows] == [r["id"] for r in rows]  # input order, ids carried
    by_id = {r["id"]: r for r in out_rows}
    assert int(by_id["row-empty"]["topic_id"]) == -1 and by_id["row-empty"]["topic_label"] == "Unclustered"
    # Each intent lands mostly in one topic, and labels belong to topics.
    for intent in {r["gold"] for r in rows if r["gold"]}:
        tops = [int(by_id[r["id"]]["topic_id"]) for r in rows if r["gold"] == intent]
        assert max(tops.count(t) for t in set(tops)) >= 0.8 * len(tops)
    labels = {}
    for r in out_rows:
        labels.setdefault(int(r["topic_id"]), set()).add(r["topic_label"])
    assert all(len(v) == 1 for v in labels.values())


def test_csv_in_csv_out(run, rows, tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "prompt", "gold"])
        writer.writeheader()
        writer.writerows(rows)
    result = run(src, "--field", "prompt", "--output", dst)
    assert result.exit_code == 0, result.output
    with open(dst, newline="", encoding="utf-8") as f:
        out_rows = list(csv.DictReader(f))
    assert list(out_rows[0]) == ["id", "topic_id", "topic_label", "topic_kind", "theme_id", "theme_label"]
    check_output(out_rows, rows)
    by_topic = {r["topic_id"]: r for r in out_rows}
    assert by_topic["-1"]["topic_kind"] == "unclustered" and by_topic["-1"]["theme_id"] == ""
    live = [r for t, r in by_topic.items() if t != "-1"]
    assert {r["topic_kind"] for r in live} == {"subject"}  # five subjects, no chit-chat among them
    assert all(r["theme_id"] != "" and r["theme_label"] for r in live)
    assert "topics, unclustered" in result.output and f"wrote {dst}" in result.output
    assert "smallest topic: 5 texts (from the number of texts)" in result.output


def test_jsonl_in_jsonl_out_with_other_id_column(run, rows, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"key": r["id"], "prompt": r["prompt"]}) + "\n" for r in rows))
    result = run(src, "--field", "prompt", "--output", dst, "--id-column", "key", "--min-topic-size", 5)
    assert result.exit_code == 0, result.output
    assert "smallest topic: 5 texts (--min-topic-size)" in result.output
    out_rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert list(out_rows[0]) == ["key", "topic_id", "topic_label", "topic_kind", "theme_id", "theme_label"]
    check_output([{**r, "id": r["key"]} for r in out_rows], rows)


def test_without_id_column_rows_stay_in_order(run, rows, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.csv"
    src.write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in rows))
    assert run(src, "--field", "prompt", "--output", dst).exit_code == 0
    with open(dst, newline="", encoding="utf-8") as f:
        out_rows = list(csv.DictReader(f))
    assert len(out_rows) == len(rows) and list(out_rows[0])[:2] == ["topic_id", "topic_label"]
    assert out_rows[7]["topic_id"] == "-1"


@pytest.mark.parametrize("setup, args, message", [
    (None, ["missing.csv", "--field", "prompt", "--output", "out.csv"],
     "input file missing.csv does not exist"),
    ("in.csv", ["in.csv", "--field", "text", "--output", "out.csv"],
     "unknown field 'text': in.csv has id, prompt"),
    ("in.csv", ["in.csv", "--field", "prompt", "--output", "out.parquet"],
     "the output must end in .csv or .jsonl"),
    ("in.txt", ["in.txt", "--field", "prompt", "--output", "out.csv"], "the input must end in .csv, .jsonl"),
    ("empty.csv", ["empty.csv", "--field", "prompt", "--output", "out.csv"], "is empty in every row"),
    ("bad.jsonl", ["bad.jsonl", "--field", "prompt", "--output", "out.csv"],
     "bad.jsonl line 2: not valid JSON"),
    ("list.jsonl", ["list.jsonl", "--field", "prompt", "--output", "out.csv"],
     "line 1: expected a JSON object"),
    ("in.csv", ["in.csv", "--field", "prompt", "--output", "o.csv", "--min-topic-size", "1"],
     "--min-topic-size"),
])
def test_errors_are_clear(run, tmp_path, monkeypatch, setup, args, message):
    monkeypatch.chdir(tmp_path)
    files = {
        "in.csv": "id,prompt\n1,hello there\n",
        "in.txt": "hello\n",
        "empty.csv": "id,prompt\n1,\n2,   \n",
        "bad.jsonl": '{"prompt": "ok"}\n{"prompt": \n',
        "list.jsonl": '["prompt"]\n',
    }
    if setup:
        (tmp_path / setup).write_text(files[setup])
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()


def test_chit_chat_forms_conversational_topics(run, rows, tmp_path):
    """Thanks and yes/no messages cluster into topics of their own, marked conversational, not unclustered."""
    chat = ["thanks!", "thank you so much", "thanks a lot", "many thanks", "thank you", "thx, great help",
            "thanks, that helps", "cheers, thanks", "thank you very much", "ok thanks"] * 3
    yes_no = ["yes", "yes please", "no", "nope", "yeah sure", "no thanks", "yes that's right", "sure",
              "no, not really", "yep"] * 3
    extra = [{"id": f"chat-{i:03d}", "prompt": t, "gold": "chat"} for i, t in enumerate(chat + yes_no)]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.csv"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    result = run(src, "--field", "prompt", "--output", dst)
    assert result.exit_code == 0, result.output
    with open(dst, newline="", encoding="utf-8") as f:
        by_id = {r["id"]: r for r in csv.DictReader(f)}
    chat_rows = [by_id[r["id"]] for r in extra]
    assert sum(r["topic_kind"] == "conversational" for r in chat_rows) >= 0.8 * len(chat_rows)
    subject_rows = [by_id[r["id"]] for r in rows if r["gold"]]
    assert all(r["topic_kind"] == "subject" for r in subject_rows)
    assert "(conversational)" in result.output
    # Conversational topics share one theme of their own, named as such; no subject topic is in it.
    chat_themes = {r["theme_id"] for r in chat_rows if r["topic_kind"] == "conversational"}
    assert len(chat_themes) == 1
    assert {r["theme_label"] for r in chat_rows if r["theme_id"] in chat_themes} == {"Small talk"}
    assert not any(r["theme_id"] in chat_themes for r in subject_rows)
