"""update_topics / label_topics against a real DuckDB warehouse and real embeddings of ten intents."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from turret.label import KeywordLabeler
from turret.topics import DEFAULT_CONFIG, TopicsError, label_topics, update_topics
from turret.topics.hierarchy import n_themes_for

P, F = "p1", "prompt"
TABLES = {
    "pipeline.event_topics": "project_id, field, event_id",
    "pipeline.topics": "project_id, field, topic_id",
    "pipeline.themes": "project_id, field, theme_id",
    "pipeline.topic_lineage": "run_id, project_id, field, topic_id, change",
    "pipeline.topic_centroids": "project_id, field, topic_id",
    "pipeline.topic_models": "project_id, field",
}


def snapshot(con) -> dict:
    out = {}
    for table, order in TABLES.items():
        cols = "* exclude (fitted_at)" if table == "pipeline.topic_models" else "*"
        out[table] = con.execute(f"select {cols} from {table} order by {order}").fetchall()
    return out


def assignments(con, pid=P, field=F) -> dict[str, int]:
    return dict(con.execute("select event_id, topic_id from pipeline.event_topics where project_id = ? "
                            "and field = ?", [pid, field]).fetchall())


def dim(stats, pid=P, field=F) -> dict:
    return stats["dimensions"][f"{pid}/{field}"]


@pytest.fixture
def loaded(warehouse, intent_data, add_texts):
    texts, gold, X = intent_data
    ids = [f"e{i:03d}" for i in range(len(texts))]
    add_texts(warehouse, P, F, ids, texts, X)
    return warehouse, ids, texts, gold, X


def test_first_run_fits_and_writes_contract_rows(loaded, settings):
    con, ids, texts, gold, X = loaded
    stats = update_topics(con, settings, run_id="r1")
    json.dumps(stats)  # plain JSON types: the DAG passes it on as an XCom
    d = dim(stats)
    assert d["action"] == "refit" and d["reason"] == "first fit"
    assert 8 <= d["topics"] <= 14 and d["unclustered_share"] <= 0.05
    got = assignments(con)
    assert sorted(got) == ids  # every event got exactly one row
    # Topics agree with the intents: the texts of each intent share one topic, mostly.
    for intent in set(gold):
        tops = [got[e] for e, g in zip(ids, gold, strict=True) if g == intent]
        assert max(tops.count(t) for t in set(tops)) >= 0.8 * len(tops)
    topics = con.execute("select topic_id, label, label_source, size, status, theme_id from pipeline.topics "
                         "order by topic_id").fetchall()
    assert topics[0][:3] == (-1, "Unclustered", "fixed")
    assert sum(t[3] for t in topics) == len(ids)
    live = [t for t in topics if t[0] >= 0]
    assert {t[4] for t in live} == {"active"} and all(t[5] is not None for t in live)
    n_themes = con.execute("select count(*) from pipeline.themes").fetchone()[0]
    assert n_themes == n_themes_for(len(live))
    lineage = con.execute("select distinct change from pipeline.topic_lineage where run_id = 'r1'").fetchall()
    assert lineage == [("new",)]
    run = json.loads(con.execute("select stats from pipeline.runs where run_id = 'r1'").fetchone()[0])
    assert run["topics"]["dimensions"][f"{P}/{F}"]["topics"] == d["topics"]


def test_second_run_without_new_texts_changes_nothing(loaded, settings):
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    before = snapshot(con)
    stats = update_topics(con, settings, run_id="r2")
    assert dim(stats)["action"] == "none"
    assert snapshot(con) == before


def test_refit_on_the_same_data_keeps_every_id(loaded, settings):
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    before = assignments(con)
    stats = update_topics(con, settings, run_id="r2", mode="refit")
    assert assignments(con) == before
    assert set(dim(stats)["lineage"]) == {"continued"}


def test_refit_on_perturbed_data_keeps_95_percent_of_ids(loaded, settings, embedder, intents, add_texts):
    con, ids, *_ = loaded
    update_topics(con, settings, run_id="r1")
    before = assignments(con)
    extra = [f"Please answer: {p}" for phrasings in intents.values() for p in phrasings[::3]]
    add_texts(con, P, F, [f"x{i:03d}" for i in range(len(extra))], extra, embedder.encode(extra))
    update_topics(con, settings, run_id="r2", mode="refit")
    after = assignments(con)
    kept = np.mean([after[e] == t for e, t in before.items()])
    assert kept >= 0.95


def test_incremental_run_assigns_new_texts_to_existing_topics(warehouse, settings, intent_data, add_texts):
    texts, gold, X = intent_data
    plain, greeted = np.arange(0, len(texts), 2), np.arange(1, len(texts), 2)
    add_texts(warehouse, P, F, [f"a{i:03d}" for i in plain], [texts[i] for i in plain], X[plain])
    update_topics(warehouse, settings, run_id="r1")
    add_texts(warehouse, P, F, [f"b{i:03d}" for i in greeted], [texts[i] for i in greeted], X[greeted])
    stats = update_topics(warehouse, settings, run_id="r2", mode="incremental")
    d = dim(stats)
    assert d["action"] == "incremental" and d["new_texts"] == len(greeted)
    got = assignments(warehouse)
    # Each greeted text lands in its plain twin's topic (the twin was fitted, the greeted one assigned).
    same = np.mean([got[f"b{i + 1:03d}"] == got[f"a{i:03d}"] for i in plain])
    assert same >= 0.9
    rows = warehouse.execute("select distinct assigned_by, run_id from pipeline.event_topics "
                             "where event_id like 'b%' and topic_id >= 0").fetchall()
    assert rows == [("nearest_centroid", "r2")]
    sizes = dict(warehouse.execute("select topic_id, size from pipeline.topics").fetchall())
    counted = {}
    for t in got.values():
        counted[t] = counted.get(t, 0) + 1
    assert {t: s for t, s in sizes.items() if s} == counted


def test_pending_pool_is_clustered_into_new_topics_with_fresh_ids(warehouse, settings, intent_data,
                                                                  add_texts):
    texts, gold, X = intent_data
    old = np.array([i for i, g in enumerate(gold) if g not in ("weather", "recipe")])
    novel = np.array([i for i, g in enumerate(gold) if g in ("weather", "recipe")])
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in old], [texts[i] for i in old], X[old])
    update_topics(warehouse, settings, run_id="r1")
    first_next = warehouse.execute("select next_topic_id from pipeline.topic_models").fetchone()[0]
    max_before = warehouse.execute("select max(topic_id) from pipeline.topics").fetchone()[0]
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in novel], [texts[i] for i in novel], X[novel])
    config = dataclasses.replace(DEFAULT_CONFIG, pool_min=10)
    stats = update_topics(warehouse, settings, run_id="r2", mode="incremental", config=config)
    d = dim(stats)
    assert d["pending"] >= 30  # the novel intents fit no existing topic...
    assert d["discovered_topics"] >= 2  # ...and the pool finds them
    new_ids = [r[0] for r in warehouse.execute(
        "select topic_id from pipeline.topic_lineage where run_id = 'r2' and change = 'new'").fetchall()]
    assert min(new_ids) == first_next > max_before
    got = assignments(warehouse)
    for intent in ("weather", "recipe"):
        tops = [got[f"e{i:03d}"] for i in novel if gold[i] == intent]
        top = max(set(tops), key=tops.count)
        assert top in new_ids and tops.count(top) >= 0.8 * len(tops)


def test_auto_mode_refits_when_too_many_texts_fit_nowhere(warehouse, settings, intent_data, add_texts):
    texts, gold, X = intent_data
    old = np.array([i for i, g in enumerate(gold) if g not in ("weather", "recipe")])
    novel = np.array([i for i, g in enumerate(gold) if g in ("weather", "recipe")])
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in old], [texts[i] for i in old], X[old])
    update_topics(warehouse, settings, run_id="r1")
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in novel], [texts[i] for i in novel], X[novel])
    d = dim(update_topics(warehouse, settings, run_id="r2"))
    assert d["action"] == "refit" and d["reason"].startswith("unclustered share")
    assert d["lineage"].get("new", 0) >= 2 and d["unclustered_share"] <= 0.05


def test_dimensions_are_separate_and_project_filter_applies(loaded, settings, add_texts):
    con, ids, texts, gold, X = loaded
    add_texts(con, "p2", "query", ids[:100], texts[:100], X[:100])
    stats = update_topics(con, settings, run_id="r1", project_id="p2")
    assert list(stats["dimensions"]) == ["p2/query"]
    assert assignments(con) == {}
    assert len(assignments(con, "p2", "query")) == 100


def test_texts_without_vectors_wait_for_the_next_run(warehouse, settings, intent_data, add_texts, text_hash):
    texts, gold, X = intent_data
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(len(texts))], texts, X)
    warehouse.execute("delete from pipeline.embeddings where text_hash = ?", [text_hash(texts[0])]).fetchall()
    update_topics(warehouse, settings, run_id="r1")
    assert "e000" not in assignments(warehouse)
    warehouse.execute("insert into pipeline.embeddings values ('all-MiniLM-L6-v2', ?, ?::float[384])",
                      [text_hash(texts[0]), X[0].tolist()]).fetchall()
    d = dim(update_topics(warehouse, settings, run_id="r2"))
    assert d["action"] == "incremental" and d["new_texts"] == 1
    assert "e000" in assignments(warehouse)


@pytest.mark.parametrize("kwargs, message", [
    ({"run_id": "r1", "mode": "sometimes"}, "unknown mode 'sometimes'"),
    ({"run_id": ""}, "run_id must be a non-empty string"),
])
def test_bad_arguments_are_named(warehouse, settings, kwargs, message):
    with pytest.raises(TopicsError, match=message):
        update_topics(warehouse, settings, **kwargs)


class CountingLabeler(KeywordLabeler):
    def __init__(self):
        super().__init__()
        self.asked = 0

    def label(self, topics, **kwargs):
        self.asked += len(topics)
        return super().label(topics, **kwargs)


def test_labels_come_from_keywords_and_are_cached(loaded, settings):
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    labeler = CountingLabeler()
    stats = label_topics(con, settings, run_id="r1", labeler=labeler)
    k = con.execute("select count(*) from pipeline.topics where topic_id >= 0").fetchone()[0]
    n_themes = con.execute("select count(*) from pipeline.themes").fetchone()[0]
    assert labeler.asked == k + n_themes
    assert dim(stats)["relabelled"] == k
    rows = con.execute(
        "select label, label_source, keywords from pipeline.topics where topic_id >= 0"
    ).fetchall()
    assert all(source == "keywords" and len(json.loads(kw)) > 0 and not label.startswith("Topic ")
               for label, source, kw in rows)
    assert all(not label.startswith("Theme ")
               for (label,) in con.execute("select label from pipeline.themes").fetchall())
    labels_before = con.execute("select topic_id, label from pipeline.topics order by 1").fetchall()

    # Nothing changed: no topic is relabelled, themes come from the cache, labels stay put.
    again = CountingLabeler()
    assert dim(label_topics(con, settings, run_id="r2", labeler=again))["relabelled"] == 0
    assert again.asked == 0
    # A refit over the same texts keeps the representative texts, so no labeler call either.
    update_topics(con, settings, run_id="r3", mode="refit")
    label_topics(con, settings, run_id="r3", labeler=again)
    assert again.asked == 0
    assert con.execute("select topic_id, label from pipeline.topics order by 1").fetchall() == labels_before


def _distinct_answers():
    """An OpenAI stub answer naming each request's topic differently (labels of a dimension are distinct)."""
    import itertools

    names = itertools.count(1)
    return lambda request: (f"LABEL: Sample topic number {next(names)}\n"
                            "DESCRIPTION: Users ask about one thing.")


def _openai_stub():
    """tests/turret/openai_stub.py, loaded by path: this folder is not next to it on sys.path."""
    import importlib.util
    import sys
    from pathlib import Path

    module = sys.modules.get("openai_stub")
    if module is None:
        spec = importlib.util.spec_from_file_location(
            "openai_stub", Path(__file__).resolve().parents[1] / "openai_stub.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["openai_stub"] = module
        spec.loader.exec_module(module)
    return module


def test_an_llm_failure_keeps_keyword_labels_until_the_llm_answers(loaded, settings):
    from turret.label import OpenAILabeler

    stub_module = _openai_stub()
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    k = con.execute("select count(*) from pipeline.topics where topic_id >= 0").fetchone()[0]

    def llm(stub):
        return OpenAILabeler(api_key="test-key", base_url=stub.base_url, model="stub-model", max_retries=0)

    def topic_labels():
        return con.execute(
            "select topic_id, label, label_source from pipeline.topics where topic_id >= 0 order by 1"
        ).fetchall()

    # The API is down: every topic gets its keyword label, nothing is cached under the LLM's key.
    with stub_module.OpenAIStub(status=500) as down:
        stats = label_topics(con, settings, run_id="r1", labeler=llm(down))
    assert down.attempts > 0
    assert dim(stats)["relabelled"] == k and dim(stats)["fallback_labels"] == k
    failed = topic_labels()
    assert all(source == "keywords" and label and not label.startswith("Topic ")
               for _, label, source in failed)
    assert con.execute("select count(*) from pipeline.topic_label_cache").fetchone()[0] == 0
    assert con.execute("select count(*) from pipeline.topic_centroids where label_key is not null"
                       ).fetchone()[0] == 0

    # The API is back: the same, unchanged topics are asked again and now carry the LLM's labels.
    with stub_module.OpenAIStub(_distinct_answers()) as up:
        stats = label_topics(con, settings, run_id="r2", labeler=llm(up))
    assert dim(stats)["relabelled"] == k and dim(stats)["fallback_labels"] == 0
    n_themes = con.execute("select count(*) from pipeline.themes").fetchone()[0]
    assert len(up.requests) == k + n_themes  # every topic and theme, once
    assert all(source == "llm:stub-model" and label.startswith("Sample topic number")
               for _, label, source in topic_labels())
    assert {s for (s,) in con.execute("select label_source from pipeline.topic_label_cache").fetchall()} == {
        "llm:stub-model"
    }

    # Nothing changed since: no topic is relabelled and the LLM is not called at all.
    with stub_module.OpenAIStub() as again:
        stats = label_topics(con, settings, run_id="r3", labeler=llm(again))
    assert dim(stats)["relabelled"] == 0
    assert again.attempts == 0
    assert all(source == "llm:stub-model" for _, _, source in topic_labels())


def test_keyword_fallbacks_pinned_by_older_versions_are_retried(loaded, settings):
    """Before the fix a fallback was cached under the LLM's key; such rows must not pin the label."""
    from turret.label import OpenAILabeler

    stub_module = _openai_stub()
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    with stub_module.OpenAIStub(_distinct_answers()) as up:
        label_topics(con, settings, run_id="r1",
                     labeler=OpenAILabeler(api_key="k", base_url=up.base_url, model="stub-model"))
    # What the old version left after an outage: keyword labels cached and keyed as if the LLM made them.
    con.execute("update pipeline.topic_label_cache set label = 'Old Keywords', label_source = 'keywords'")
    con.execute("update pipeline.topics set label = 'Old Keywords', label_source = 'keywords' "
                "where topic_id >= 0")
    k = con.execute("select count(*) from pipeline.topics where topic_id >= 0").fetchone()[0]
    with stub_module.OpenAIStub(_distinct_answers()) as up:
        stats = label_topics(con, settings, run_id="r2",
                             labeler=OpenAILabeler(api_key="k", base_url=up.base_url, model="stub-model"))
    assert dim(stats)["relabelled"] == k and up.attempts > 0
    rows = con.execute("select label, label_source from pipeline.topics where topic_id >= 0").fetchall()
    assert {source for _, source in rows} == {"llm:stub-model"}
    assert "Old Keywords" not in {label for label, _ in rows} and len({label for label, _ in rows}) == k
    assert {s for (s,) in con.execute("select label_source from pipeline.topic_label_cache").fetchall()} == {
        "llm:stub-model"
    }


def test_a_new_embedding_model_refits_and_keeps_ids_by_members(loaded, settings):
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    before = assignments(con)
    con.execute("insert into pipeline.embeddings select 'other-model', text_hash, vector "
                "from pipeline.embeddings").fetchall()
    other = dataclasses.replace(settings, embedding_model="other-model")
    d = dim(update_topics(con, other, run_id="r2"))
    assert d["action"] == "refit" and d["reason"].startswith("embedding model changed")
    assert assignments(con) == before


def test_too_few_texts_wait_unclustered_until_there_are_enough(warehouse, settings, intent_data, add_texts):
    texts, gold, X = intent_data
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(6)], texts[:6], X[:6])
    d = dim(update_topics(warehouse, settings, run_id="r1"))
    assert d["topics"] == 0 and d["unclustered_share"] == 1.0
    assert set(assignments(warehouse).values()) == {-1}
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(6, 12)], texts[6:12], X[6:12])
    d = dim(update_topics(warehouse, settings, run_id="r2", mode="incremental"))
    assert d["action"] == "incremental" and d["pending"] == 6
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(12, len(texts))], texts[12:], X[12:])
    d = dim(update_topics(warehouse, settings, run_id="r3"))
    assert d["action"] == "refit" and d["topics"] >= 8


def test_a_field_below_the_fit_minimum_says_how_many_more_texts_it_needs(warehouse, settings, intent_data,
                                                                        add_texts):
    texts, _, X = intent_data
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(20)], texts[:20], X[:20])
    update_topics(warehouse, settings, run_id="r1")
    (note,) = warehouse.execute("select description from pipeline.topics where topic_id = -1").fetchone()
    assert note == "Topics appear once this field has 50 texts: 20 so far, 30 more needed."
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(20, len(texts))], texts[20:], X[20:])
    update_topics(warehouse, settings, run_id="r2")
    (note,) = warehouse.execute("select description from pipeline.topics where topic_id = -1").fetchone()
    assert "more needed" not in note


def test_theme_ids_hold_across_a_refit(loaded, settings, embedder, intents, add_texts):
    con = loaded[0]
    update_topics(con, settings, run_id="r1")
    themes = lambda: dict(con.execute(  # noqa: E731
        "select topic_id, theme_id from pipeline.topics "
        "where topic_id >= 0 and status = 'active'").fetchall())
    before = themes()
    assert len(set(before.values())) >= 2
    extra = [f"Quick question: {p}" for phrasings in intents.values() for p in phrasings[::4]]
    add_texts(con, P, F, [f"x{i:03d}" for i in range(len(extra))], extra, embedder.encode(extra))
    update_topics(con, settings, run_id="r2", mode="refit")
    after = themes()
    kept = [t for t in before if t in after]
    assert np.mean([after[t] == before[t] for t in kept]) >= 0.95
    (next_theme,) = con.execute("select next_theme_id from pipeline.topic_models").fetchone()
    assert next_theme > max(after.values())


def test_chit_chat_topics_are_marked_conversational(warehouse, settings, intent_data, add_texts, embedder):
    from turret.conversation import prototypes_from_encoder

    texts, gold, X = intent_data
    chat = ["thanks!", "thank you so much", "thanks a lot", "many thanks", "thank you", "thanks, that helps",
            "cheers, thanks", "thank you very much", "ok thanks", "thanks again"] * 2
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(len(texts))], texts, X)
    add_texts(warehouse, P, F, [f"c{i:03d}" for i in range(len(chat))], chat, embedder.encode(chat))
    update_topics(warehouse, settings, run_id="r1", prototypes=prototypes_from_encoder(embedder.encode))
    kinds = dict(warehouse.execute("select topic_id, kind from pipeline.topics").fetchall())
    assert kinds[-1] == "unclustered"
    chat_topics = {t for e, t in assignments(warehouse).items() if e.startswith("c")}
    assert chat_topics and all(kinds[t] == "conversational" for t in chat_topics)
    subject_topics = {t for e, t in assignments(warehouse).items() if e.startswith("e")}
    assert all(kinds[t] == "subject" for t in subject_topics)
    # They share one theme of their own, named as such, which label_topics leaves as it is.
    theme_of = dict(warehouse.execute("select topic_id, theme_id from pipeline.topics").fetchall())
    (chat_theme,) = {theme_of[t] for t in chat_topics}
    assert chat_theme not in {theme_of[t] for t in subject_topics}
    label_topics(warehouse, settings, run_id="r1", labeler=KeywordLabeler())
    assert warehouse.execute("select label from pipeline.themes where theme_id = ?",
                             [chat_theme]).fetchone() == ("Small talk",)


def test_texts_in_other_languages_do_not_form_topics(warehouse, settings, intent_data, add_texts, embedder):
    texts, _, X = intent_data
    spanish = ["hola, quiero cambiar mi contraseña", "cuánto cuesta el envío a mi casa",
               "no puedo iniciar sesión en la aplicación", "dónde está mi pedido de ayer",
               "quiero cancelar mi suscripción mensual", "cómo hago una devolución del producto"] * 5
    spanish = [f"{t} ({i})" for i, t in enumerate(spanish)]
    ids = [f"s{i:03d}" for i in range(len(spanish))]
    add_texts(warehouse, P, F, [f"e{i:03d}" for i in range(len(texts))], texts, X)
    add_texts(warehouse, P, F, ids, spanish, embedder.encode(spanish))
    warehouse.execute("insert into pipeline.event_languages select ?, event_id, ?, 'es' from "
                      "(select unnest(?::varchar[]) as event_id)", [P, F, ids]).fetchall()
    update_topics(warehouse, settings, run_id="r1")
    got = assignments(warehouse)
    members: dict[int, list[str]] = {}
    for e, t in got.items():
        members.setdefault(t, []).append(e)
    for t, es in members.items():
        if t >= 0:  # no topic is made of the Spanish texts
            assert sum(e.startswith("s") for e in es) < 0.5 * len(es)


def test_theme_documents_speak_for_every_member_topic():
    """A theme is phrased from its members' texts in turn and ranked against their shared direction."""
    from turret.label import TopicDocuments
    from turret.topics.store import theme_documents

    docs = {
        0: TopicDocuments("0", ["play the song", "play music"], ["play", "song"],
                          texts=["play the song", "play music", "put on some jazz"], centroid=[1, 0, 0]),
        1: TopicDocuments("1", ["turn up the volume"], ["volume", "play"], centroid=[0.0, 1.0, 0.0]),
        2: TopicDocuments("2", ["what is the weather"], ["weather"], centroid=[0.0, 0.0, 1.0]),
    }
    themes = theme_documents(docs, {0: 7, 1: 7, 2: 8, -1: None})
    music = themes[7]
    assert music.representative_docs == ["play the song", "turn up the volume"]
    assert music.keywords[0] == "play"
    # Each member's closest text first, then each one's next: the small topic is not drowned out.
    assert music.texts == ["play the song", "turn up the volume", "play music", "put on some jazz"]
    assert np.allclose(music.centroid, [2 ** -0.5, 2 ** -0.5, 0.0])
    assert themes[8].texts == ["what is the weather"]
    # Without a centroid for every member, the labeler takes the mean embedding of the texts instead.
    docs[1].centroid = None
    assert theme_documents(docs, {0: 7, 1: 7})[7].centroid is None
