"""Topic labels: c-TF-IDF keywords, the keyword labeler, and the OpenAI labeler against a real HTTP stub."""

from __future__ import annotations

import logging

import pytest
from openai_stub import GOOD_ANSWER, OpenAIStub

from turret.label import (
    KeywordLabeler,
    OpenAILabeler,
    TopicDocuments,
    build_prompt,
    ctfidf_keywords,
    get_labeler,
    label_cache_key,
    parse_answer,
)
from turret.settings import Settings

DOCS = {
    "0": [
        "How do I reset my password?",
        "I forgot my password and cannot log in",
        "reset password link is not working",
        "password reset email never arrived",
    ],
    "1": [
        "What does the pro plan cost?",
        "pricing for the enterprise plan",
        "is there a discount on the annual plan pricing",
        "compare plan pricing",
    ],
    "2": ["the the and of", "a an is"],  # only stop words
}


def test_ctfidf_keywords_rank_distinctive_terms_first():
    keywords = ctfidf_keywords(DOCS, top_n=5)
    assert keywords["0"][0] == "password"
    assert "reset password" in keywords["0"] or "password reset" in keywords["0"]
    assert set(keywords["1"][:2]) == {"plan", "pricing"}
    assert not {"password", "reset"} & set(keywords["1"])  # shared-nothing topics do not leak
    assert keywords["2"] == []
    assert all(len(v) <= 5 for v in keywords.values())
    assert ctfidf_keywords(DOCS, top_n=5) == keywords  # deterministic


def test_a_topic_of_chat_words_keeps_them_but_never_function_words():
    keywords = ctfidf_keywords({"a": ["thanks!", "ok thanks", "thank you so much"], "b": ["reset my password"]})
    assert keywords["a"][0] == "thanks" and "ok" in keywords["a"]
    assert "my" not in keywords["b"]
    assert "password" in keywords["b"]


def test_ctfidf_edge_cases():
    assert ctfidf_keywords({}) == {}
    assert ctfidf_keywords({"a": ["the and"], "b": []}) == {"a": [], "b": []}


@pytest.mark.parametrize(
    ("keywords", "label"),
    [
        (["password", "reset password", "reset"], "Reset Password"),
        (["pricing", "plan", "annual"], "Pricing Plan"),
        (["refund"], "Refund Topic"),
        (["notifications", "notification", "email"], "Notifications Email"),
        (["invoice invoices", "invoices", "billing"], "Invoice Billing"),
        ([], "Topic 7"),
        (["  ", ""], "Topic 7"),
    ],
)
def test_keyword_labeler(keywords, label):
    result = KeywordLabeler().label([TopicDocuments("7", ["x"], keywords)])[0]
    assert result.label == label
    assert 2 <= len(result.label.split()) <= 5
    assert result.source == "keywords"
    assert result.description.endswith(".")


def test_keyword_labeler_description():
    out = KeywordLabeler().label([TopicDocuments("1", [], ["billing", "invoice", "refund", "card"])])[0]
    assert out.description == "Messages about billing, invoice and refund."


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (GOOD_ANSWER, True),
        ("label: Billing Questions\n\ndescription: Users ask about invoices and charges", True),
        ('LABEL: "Plan Pricing."\nDESCRIPTION: Questions about what each plan costs.', True),
        ("LABEL: Billing\nDESCRIPTION: Users ask about invoices.", False),  # one word
        ("LABEL: A Very Long Label With Too Many Words\nDESCRIPTION: Users ask things here.", False),
        ("Sure! Here is the label.\nLABEL: Billing Help\nDESCRIPTION: Users ask about bills.", False),
        ("DESCRIPTION: Users ask about bills.\nLABEL: Billing Help", False),
        ("", False),
        (None, False),
    ],
)
def test_parse_answer_is_strict(answer, ok):
    if ok:
        label, description = parse_answer(answer)
        assert 2 <= len(label.split()) <= 5 and not label.endswith(".") and '"' not in label
        assert description.endswith(".")
    else:
        with pytest.raises(ValueError):
            parse_answer(answer)


def test_prompt_truncates_and_limits_docs():
    topic = TopicDocuments("0", [f"doc {i} " + "x" * 1000 for i in range(20)], ["alpha", "beta"])
    prompt = build_prompt(topic)
    assert prompt.count("\n- doc ") == 8
    assert "doc 8 " not in prompt
    assert "…" in prompt and "alpha, beta" in prompt
    assert max(len(line) for line in prompt.splitlines()) < 400


TOPICS = [
    TopicDocuments("0", DOCS["0"], ["password", "reset password"]),
    TopicDocuments("1", DOCS["1"], ["pricing", "plan"]),
]


def labeler(stub, **kw) -> OpenAILabeler:
    return OpenAILabeler(api_key="test-key", base_url=stub.base_url, model="stub-model", **kw)


def test_openai_success_and_request_contents():
    with OpenAIStub() as stub:
        labels = labeler(stub).label(TOPICS)
    assert [(lab.key, lab.label, lab.source) for lab in labels] == [
        ("0", "Password Reset Help", "llm:stub-model"),
        ("1", "Password Reset Help", "llm:stub-model"),
    ]
    assert labels[0].description == "Users ask how to reset or recover their password."
    assert len(stub.requests) == 2
    first = stub.requests[0]
    assert first["model"] == "stub-model"
    user = next(m["content"] for m in first["messages"] if m["role"] == "user")
    assert all(doc in user for doc in DOCS["0"])  # the examples are in the request
    assert "password, reset password" in user
    assert "LABEL:" in user and "DESCRIPTION:" in user


def test_openai_retries_then_succeeds():
    with OpenAIStub(fail_first=2) as stub:
        labels = labeler(stub, max_retries=3).label(TOPICS[:1])
    assert labels[0].source == "llm:stub-model"
    assert stub.attempts == 3


def test_openai_permanent_failure_falls_back_to_keywords(caplog):
    with OpenAIStub(status=500) as stub, caplog.at_level(logging.WARNING, logger="turret.label"):
        labels = labeler(stub, max_retries=1).label(TOPICS)
    assert [(lab.label, lab.source) for lab in labels] == [("Reset Password", "keywords"), ("Pricing Plan", "keywords")]
    assert stub.attempts == 4  # 2 topics x (1 try + 1 retry)
    assert "falling back to keywords" in caplog.text and "InternalServerError" in caplog.text


def test_openai_dead_endpoint_stops_calling_after_a_few_topics():
    topics = [TopicDocuments(str(i), ["x y z"], ["alpha", "beta"]) for i in range(6)]
    with OpenAIStub(status=503) as stub:
        labels = labeler(stub, max_retries=0).label(topics)
    assert {lab.source for lab in labels} == {"keywords"}
    assert stub.attempts == 3


def test_openai_garbage_falls_back(caplog):
    with OpenAIStub("I think this cluster is about passwords!") as stub, caplog.at_level(logging.WARNING):
        labels = labeler(stub).label(TOPICS[:1])
    assert (labels[0].label, labels[0].source) == ("Reset Password", "keywords")
    assert "unusable answer" in caplog.text


def test_openai_hang_times_out_and_falls_back():
    with OpenAIStub(hang_seconds=30) as stub:
        labels = labeler(stub, max_retries=0, timeout=0.5).label(TOPICS[:1])
    assert labels[0].source == "keywords"


def test_openai_unreachable_falls_back():
    labels = OpenAILabeler(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2).label(TOPICS)
    assert [lab.source for lab in labels] == ["keywords", "keywords"]


def test_get_labeler_by_settings():
    assert isinstance(get_labeler(Settings()), KeywordLabeler)
    llm = get_labeler(Settings(openai_api_key="sk-test", openai_base_url="http://x/v1", llm_model="m"))
    assert isinstance(llm, OpenAILabeler) and llm.labeler_id == "llm:m" and llm.base_url == "http://x/v1"


def test_label_cache_key():
    topic = TopicDocuments("0", ["b", "a"], ["k1", "k2"])
    key = label_cache_key(topic, "keywords")
    assert key == label_cache_key(TopicDocuments("9", ["a", "b"], ["k1", "k2"]), "keywords")  # doc order, key
    assert key != label_cache_key(topic, "llm:gpt-4o-mini")
    assert key != label_cache_key(TopicDocuments("0", ["a", "c"], ["k1", "k2"]), "keywords")
    assert key != label_cache_key(TopicDocuments("0", ["a", "b"], ["k2", "k1"]), "keywords")
