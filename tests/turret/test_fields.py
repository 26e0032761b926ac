"""Metadata field typing, overrides, the `turret fields` command, and text extraction (turret.texts)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import duckdb
import pytest
from click.testing import CliRunner
from turret import fields, texts
from turret.settings import Settings
from turret.warehouse import connect, ensure_schema

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"


def add_events(con, project: str, metadatas: list[dict], start: int = 0) -> None:
    rows = [
        (project, f"evt_{project[:4]}{i:028x}", "turret", None, "user_prompt", "s1", "u1", False, False,
         datetime(2025, 6, 15, 12), datetime(2025, 6, 15, 12), json.dumps(m), "seg", i)
        for i, m in enumerate(metadatas, start=start)
    ]
    con.executemany("insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


PROMPTS = [f"How do I {verb} my {thing}?" for verb in ("reset", "change", "find", "delete", "export")
           for thing in ("password", "email address", "invoice", "account", "api key", "team", "plan")]


def typed(con, project=P1) -> dict[str, str]:
    return {f.field: f.detected_type for f in fields.type_fields(con, project)}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (PROMPTS, "text"),
        (["How do I reset my password?"], "text"),  # seen once, reads like prose
        (["web"], "enum"),  # seen once, a short word
        ([42], "number"),
        ([1, 2.5, -3, 1e6], "number"),
        (["12", "3.5", "-7", 8], "number"),  # numeric strings count as numbers
        (["02139", "10001", "94105"], "enum"),  # leading zero: a code, not a quantity
        ([True, False, True], "enum"),
        (["yes", "no", "no", "yes"], "enum"),
        ([str(uuid.UUID(int=i * 7919 + 1)) for i in range(200)], "enum"),  # ids: distinct, no spaces
        ([None, None], "enum"),  # only nulls so far
        (["free", "pro", "enterprise"] * 40, "enum"),
        (["Tell me about pricing", "Talk to a human", "Show my orders"] * 30, "enum"),  # canned buttons
        ([*PROMPTS, 5, 7, "no"], "text"),  # mixed types: mostly prose
        ([1, 2, "three"], "enum"),  # mixed types without prose
        ([None, "How do I cancel my subscription today?", None], "text"),  # nulls are ignored
    ],
)
def test_detection_rules(con, values, expected):
    add_events(con, P1, [{"f": v} for v in values])
    assert typed(con) == {"f": expected}


def test_stats_examples_and_per_project_typing(con):
    tiers = ["free", "pro"] * 50
    add_events(con, P1, [{"prompt": p, "tier": t} for p, t in zip(PROMPTS, tiers, strict=False)])
    add_events(con, P2, [{"tier": "a long sentence that is free text here"}], start=1000)
    result = {(f.project_id, f.field): f for f in fields.type_fields(con)}
    assert result[(P1, "prompt")].effective_type == "text"
    assert result[(P1, "tier")].effective_type == "enum"
    assert result[(P2, "tier")].effective_type == "text"  # typing is per project
    tier = result[(P1, "tier")]
    assert (tier.n_values, tier.n_distinct) == (len(PROMPTS), 2)
    assert tier.examples == ["free", "pro"]  # most frequent first, ties by value
    stored = fields.list_fields(con, P1)
    assert [(f.field, f.effective_type, f.examples) for f in stored] == [
        ("prompt", "text", result[(P1, "prompt")].examples),
        ("tier", "enum", ["free", "pro"]),
    ]


PII_PROMPTS = [
    "Email me at bob@example.com about my invoice",
    "My card 4111 1111 1111 1111 was charged twice",
]


def test_examples_are_scrubbed_before_they_are_stored(con):
    add_events(con, P1, [{"prompt": p, "contact": "bob@example.com"} for p in PII_PROMPTS * 3 + PROMPTS])
    result = {f.field: f for f in fields.type_fields(con)}
    assert result["prompt"].effective_type == "text"
    assert result["prompt"].examples[:2] == ["Email me at [EMAIL] about my invoice",
                                             "My card [CARD] was charged twice"]
    assert result["contact"].examples == ["[EMAIL]"]
    stored = con.execute("select string_agg(examples::varchar, ' ') from pipeline.fields").fetchone()[0]
    assert "bob@example.com" not in stored and "4111 1111" not in stored and "[EMAIL]" in stored
    assert [f.examples for f in fields.list_fields(con, P1)] == [result["contact"].examples,
                                                               result["prompt"].examples]


def test_examples_follow_the_scrub_setting(con, monkeypatch):
    add_events(con, P1, [{"prompt": PII_PROMPTS[0]}])
    raw = fields.type_fields(con, settings=Settings(scrub_pii=False))
    assert raw[0].examples == [PII_PROMPTS[0]]
    monkeypatch.setenv("TURRET_SCRUB_PII", "false")  # without settings, the environment's
    assert fields.type_fields(con)[0].examples == [PII_PROMPTS[0]]
    monkeypatch.setenv("TURRET_SCRUB_PII", "true")
    assert fields.type_fields(con)[0].examples == ["Email me at [EMAIL] about my invoice"]
    # Values that scrub to the same text are one example.
    add_events(con, P1, [{"prompt": "Email me at ann@example.org about my invoice"}], start=10)
    assert fields.type_fields(con)[0].examples == ["Email me at [EMAIL] about my invoice"]


def test_detection_is_revalidated_and_overrides_survive(con):
    add_events(con, P1, [{"note": "ok"}, {"answer": "fine"}])
    assert typed(con) == {"note": "enum", "answer": "enum"}
    fields.set_override(con, P1, "answer", "text")
    add_events(con, P1, [{"note": p, "answer": "x"} for p in PROMPTS], start=100)
    after = {f.field: f for f in fields.type_fields(con, P1)}
    assert after["note"].detected_type == "text"  # re-validated with the new values
    assert (after["answer"].detected_type, after["answer"].override_type, after["answer"].effective_type) == (
        "enum", "text", "text")
    cleared = fields.set_override(con, P1, "answer", "auto")
    assert (cleared.override_type, cleared.effective_type) == (None, "enum")


def test_set_override_validates(con):
    add_events(con, P1, [{"prompt": "hello there my friend"}])
    with pytest.raises(fields.FieldError, match="unknown type 'bool'"):
        fields.set_override(con, P1, "prompt", "bool")
    with pytest.raises(fields.FieldError, match="no metadata field 'nope'.*known fields: prompt"):
        fields.set_override(con, P1, "nope", "text")
    # A field in raw.events but not typed yet is typed on the spot.
    assert fields.set_override(con, P1, "prompt", "enum").effective_type == "enum"


def test_extract_texts_scrubs_hashes_and_is_idempotent(con):
    settings = Settings()
    add_events(
        con,
        P1,
        [
            {"prompt": "Email me at bob@example.com about my invoice", "tier": "free"},
            {"prompt": "Email me at ann@example.org about my invoice", "tier": "pro"},
            {"prompt": "   ", "tier": "pro"},
            {"prompt": None, "tier": "pro"},
            {"tier": "free"},
            *[{"prompt": p, "tier": "free"} for p in PROMPTS],
        ],
    )
    fields.type_fields(con)
    assert texts.extract_texts(con, settings) == 2 + len(PROMPTS)
    rows = con.execute(
        "select event_id, field, text_hash, text from pipeline.event_texts order by event_id"
    ).fetchall()
    assert {r[1] for r in rows} == {"prompt"}
    assert rows[0][3] == rows[1][3] == "Email me at [EMAIL] about my invoice"
    assert rows[0][2] == rows[1][2] == texts.text_hash("Email me at [EMAIL] about my invoice")
    assert len(rows[0][2]) == 32
    assert texts.extract_texts(con, settings) == 0

    # A new event is added on the next run; an override away from text removes the field's rows.
    add_events(con, P1, [{"prompt": "Where can I download my receipts?"}], start=500)
    assert texts.extract_texts(con, settings) == 1
    fields.set_override(con, P1, "prompt", "enum")
    assert texts.extract_texts(con, settings) == 0
    assert con.execute("select count(*) from pipeline.event_texts").fetchall() == [(0,)]


def test_extract_texts_without_scrubbing(con):
    add_events(con, P1, [{"prompt": "call me on 555-123-4567 please"}])
    fields.type_fields(con)
    texts.extract_texts(con, Settings(scrub_pii=False))
    stored = con.execute("select text from pipeline.event_texts").fetchall()
    assert stored == [("call me on 555-123-4567 please",)]


# ------------------------------------------------------------------------------------------ the command


@pytest.fixture
def warehouse(settings):
    con = connect(settings)
    con.execute("insert into raw.projects values (?, 'acme', 'pro', 1000, '2025-01-01')", [P1])
    add_events(con, P1, [{"prompt": p, "tier": "free"} for p in PROMPTS])
    fields.type_fields(con)
    con.close()
    return settings


def _turret_cli():
    """The real ``turret.cli`` group. Under pytest's default rootdir imports ``tests/turret/cli`` shadows the
    package as a namespace (tests/turret/cli/conftest.py explains); load the real one if so."""
    import importlib.util
    import sys
    from pathlib import Path

    import turret.settings

    module = sys.modules.get("turret.cli")
    if getattr(module, "__file__", None) is None:
        cli_dir = Path(turret.settings.__file__).parent / "cli"
        spec = importlib.util.spec_from_file_location(
            "turret.cli", cli_dir / "__init__.py", submodule_search_locations=[str(cli_dir)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["turret.cli"] = module
        spec.loader.exec_module(module)
    return module.cli


def run(*args):
    return CliRunner().invoke(_turret_cli(), ["fields", *args])


def test_cli_list_by_name_and_id(warehouse):
    result = run("list", "acme")
    assert result.exit_code == 0, result.output
    assert "prompt" in result.output and "text" in result.output and "tier" in result.output
    as_json = run("list", P1, "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert [(d["field"], d["detected_type"], d["override_type"], d["effective_type"]) for d in data] == [
        ("prompt", "text", None, "text"),
        ("tier", "enum", None, "enum"),
    ]
    assert data[1]["examples"] == ["free"]


def test_cli_never_prints_pii_in_examples(warehouse):
    con = connect(warehouse)
    add_events(con, P1, [{"prompt": p, "tier": "free"} for p in PII_PROMPTS * 5], start=1000)
    fields.type_fields(con)
    con.close()
    for args in (("list", "acme"), ("list", "acme", "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert "[EMAIL]" in result.output or "[CARD]" in result.output
        assert "bob@example.com" not in result.output and "4111 1111" not in result.output


def test_cli_scrubs_examples_stored_before_scrubbing(warehouse):
    con = connect(warehouse)
    con.execute("update pipeline.fields set examples = ? where field = 'prompt'",
                [json.dumps(["Email me at bob@example.com about my invoice"])])
    con.close()
    data = json.loads(run("list", "acme", "--json").output)
    assert data[0]["examples"] == ["Email me at [EMAIL] about my invoice"]


def test_cli_set_and_auto(warehouse):
    result = run("set", "acme", "tier", "--type", "text")
    assert result.exit_code == 0, result.output
    assert "tier" in result.output and "text" in result.output
    data = json.loads(run("list", "acme", "--json").output)
    assert data[1]["override_type"] == "text" and data[1]["effective_type"] == "text"
    assert run("set", "acme", "tier", "--type", "auto").exit_code == 0
    assert json.loads(run("list", "acme", "--json").output)[1]["effective_type"] == "enum"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "nosuch"), "no project 'nosuch'"),
        (("set", "nosuch", "tier", "--type", "text"), "no project 'nosuch'"),
        (("set", "acme", "missing", "--type", "text"), "no metadata field 'missing'"),
        (("set", "acme", "tier", "--type", "bogus"), "Invalid value for '--type'"),
        (("set", "acme", "tier"), "Missing option '--type'"),
    ],
)
def test_cli_errors_are_clear(warehouse, args, message):
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_is_registered_in_the_turret_command(warehouse):
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which("turret", path=os.path.dirname(sys.executable))
    assert exe, "the turret console script is not installed in this environment"
    result = subprocess.run([exe, "fields", "list", "acme", "--json"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert [d["field"] for d in json.loads(result.stdout)] == ["prompt", "tier"]


def test_cli_without_warehouse(settings):
    result = run("list", "acme")
    assert result.exit_code != 0
    assert "no warehouse" in result.output
    assert "Traceback" not in result.output


def test_overrides_recorded_in_the_control_plane_win_and_clear(con, settings):
    """What `turret fields set` and the dashboard record in the control plane is what the next typing uses."""
    from turret import field_overrides
    from turret.controlplane import ControlPlane

    add_events(con, P1, [{"note": "ok", "answer": "fine"}])
    fields.set_override(con, P1, "answer", "text")  # an override the warehouse holds from before
    cp = ControlPlane.from_settings(settings)
    try:
        field_overrides.save(cp, P1, "note", "number")
        field_overrides.save(cp, P1, "answer", "auto")  # cleared: detection decides again
        with pytest.raises(field_overrides.OverrideError, match="unknown type 'bool'"):
            field_overrides.save(cp, P1, "note", "bool")
        recorded = field_overrides.load(cp)
    finally:
        cp.dispose()
    assert recorded == {(P1, "note"): "number", (P1, "answer"): None}
    after = {f.field: f for f in fields.type_fields(con, settings=settings, recorded_overrides=recorded)}
    assert (after["note"].override_type, after["note"].effective_type) == ("number", "number")
    assert (after["answer"].override_type, after["answer"].effective_type) == (None, "enum")
    stored = dict(con.execute("select field, effective_type from pipeline.fields").fetchall())
    assert stored == {"note": "number", "answer": "enum"}
    # Without recorded overrides the warehouse's own stay as they are.
    assert {f.field: f.effective_type for f in fields.type_fields(con)} == stored


def test_cli_set_records_the_override_in_the_control_plane(warehouse, settings):
    from turret import field_overrides

    assert run("set", "acme", "tier", "--type", "text").exit_code == 0
    assert field_overrides.load_for(settings) == {(P1, "tier"): "text"}
    assert run("set", "acme", "tier", "--type", "auto").exit_code == 0
    assert field_overrides.load_for(settings) == {(P1, "tier"): None}
