"""The OpenAI labeler against a real HTTP server speaking the OpenAI chat API (tests/turret/openai_stub.py):
the request, strict parsing, the labelling rules (distinct, 2-5 words, no misspelt word) with one retry, and
the keyword fallback."""

from __future__ import annotations

import logging

import pytest
from openai_stub import GOOD_ANSWER, OpenAIStub
from turret.label import (
    KeywordLabeler,
    OpenAILabeler,
    TopicDocuments,
    build_prompt,
    get_labeler,
    parse_answer,
)
from turret.settings import Settings

PASSWORD = [
    "How do I reset my password?",
    "I forgot my password and cannot log in",
    "reset password link is not working",
    "password reset email never arrived",
]
PRICING = [
    "What does the pro plan cost?",
    "pricing for the enterprise plan",
    "is there a discount on the annual plan pricing",
    "compare plan pricing",
]
TOPICS = [
    TopicDocuments("0", PASSWORD, ["password", "reset password"]),
    TopicDocuments("1", PRICING, ["pricing", "plan"]),
]
PRICING_ANSWER = "LABEL: Plan pricing questions\nDESCRIPTION: Users ask what each plan costs."


def by_topic(request: dict) -> str:
    """The right answer for whichever topic the request is about."""
    user = request["messages"][1]["content"]
    return GOOD_ANSWER if "password" in user else PRICING_ANSWER


def keyword_labels(topics=TOPICS, **kw) -> dict[str, str]:
    return {lab.key: lab.label for lab in KeywordLabeler().label(topics, **kw)}


def labeler(stub, **kw) -> OpenAILabeler:
    return OpenAILabeler(api_key="test-key", base_url=stub.base_url, model="stub-model", **kw)


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


def test_openai_success_and_request_contents():
    with OpenAIStub(by_topic) as stub:
        labels = labeler(stub).label(TOPICS)
    assert [(lab.key, lab.label, lab.source) for lab in labels] == [
        ("0", "Password Reset Help", "llm:stub-model"),
        ("1", "Plan pricing questions", "llm:stub-model"),
    ]
    assert labels[0].description == "Users ask how to reset or recover their password."
    assert len(stub.requests) == 2
    first = stub.requests[0]
    assert first["model"] == "stub-model"
    user = next(m["content"] for m in first["messages"] if m["role"] == "user")
    assert all(doc in user for doc in PASSWORD)  # the examples are in the request
    assert "password, reset password" in user  # and the keywords
    assert "LABEL:" in user and "DESCRIPTION:" in user


def test_a_label_another_topic_has_is_asked_again_then_falls_back(caplog):
    # The model names both topics alike: the second is asked again, saying why, then gets its keyword label.
    with OpenAIStub(GOOD_ANSWER) as stub, caplog.at_level(logging.WARNING, logger="turret.labels.llm"):
        labels = labeler(stub).label(TOPICS)
    assert [(lab.label, lab.source) for lab in labels] == [
        ("Password Reset Help", "llm:stub-model"),
        (keyword_labels(reserved=["Password Reset Help"])["1"], "keywords"),
    ]
    assert len({lab.label.lower() for lab in labels}) == 2
    assert len(stub.requests) == 3
    retry = stub.requests[2]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == GOOD_ANSWER
    assert "already another topic's" in retry[3]["content"]
    assert "falling back to keywords" in caplog.text


def test_reserved_labels_of_other_topics_are_respected():
    recovery = "LABEL: Password recovery\nDESCRIPTION: Users cannot get into their account."
    answers = iter([GOOD_ANSWER, recovery])
    with OpenAIStub(lambda request: next(answers)) as stub:
        labels = labeler(stub).label(TOPICS[:1], reserved=["password reset help"])
    assert (labels[0].label, labels[0].source) == ("Password recovery", "llm:stub-model")
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    "bad",
    [
        "LABEL: Pasword Reset Help\nDESCRIPTION: Users ask how to reset their password.",  # misspelt
        "LABEL: Passwords\nDESCRIPTION: Users ask how to reset their password.",  # one word
        "I think this cluster is about passwords!",  # not the format
    ],
)
def test_an_answer_breaking_a_rule_is_retried_once_with_the_reason(bad):
    answers = iter([bad, GOOD_ANSWER])
    with OpenAIStub(lambda request: next(answers)) as stub:
        labels = labeler(stub).label(TOPICS[:1])
    assert (labels[0].label, labels[0].source) == ("Password Reset Help", "llm:stub-model")
    assert stub.requests[1]["messages"][2]["content"] == bad
    assert stub.requests[1]["messages"][3]["content"].startswith("That answer cannot be used:")


def test_openai_garbage_twice_falls_back(caplog):
    with OpenAIStub("I think this cluster is about passwords!") as stub, caplog.at_level(logging.WARNING):
        labels = labeler(stub).label(TOPICS[:1])
    assert (labels[0].label, labels[0].source) == (keyword_labels(TOPICS[:1])["0"], "keywords")
    assert len(stub.requests) == 2
    assert "unusable answer" in caplog.text


def test_openai_retries_then_succeeds():
    with OpenAIStub(fail_first=2) as stub:
        labels = labeler(stub, max_retries=3).label(TOPICS[:1])
    assert labels[0].source == "llm:stub-model"
    assert stub.attempts == 3


def test_openai_permanent_failure_falls_back_to_keywords(caplog):
    with OpenAIStub(status=500) as stub, caplog.at_level(logging.WARNING, logger="turret.labels.llm"):
        labels = labeler(stub, max_retries=1).label(TOPICS)
    expected = keyword_labels()
    assert [(lab.label, lab.source) for lab in labels] == [
        (expected["0"], "keywords"),
        (expected["1"], "keywords"),
    ]
    assert stub.attempts == 4  # 2 topics x (1 try + 1 retry)
    assert "falling back to keywords" in caplog.text and "InternalServerError" in caplog.text


def test_openai_dead_endpoint_stops_calling_after_a_few_topics():
    topics = [TopicDocuments(str(i), [f"x y z {i}"], ["alpha", "beta"]) for i in range(6)]
    with OpenAIStub(status=503) as stub:
        labels = labeler(stub, max_retries=0).label(topics)
    assert {lab.source for lab in labels} == {"keywords"}
    assert len({lab.label for lab in labels}) == 6
    assert stub.attempts == 3


def test_openai_hang_times_out_and_falls_back():
    with OpenAIStub(hang_seconds=30) as stub:
        labels = labeler(stub, max_retries=0, timeout=0.5).label(TOPICS[:1])
    assert labels[0].source == "keywords"


def test_openai_unreachable_falls_back():
    dead = OpenAILabeler(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    labels = dead.label(TOPICS)
    assert [lab.source for lab in labels] == ["keywords", "keywords"]


def test_get_labeler_by_settings(turret_home):
    assert isinstance(get_labeler(Settings()), KeywordLabeler)
    llm = get_labeler(Settings(openai_api_key="sk-test", openai_base_url="http://x/v1", llm_model="m"))
    assert isinstance(llm, OpenAILabeler) and llm.labeler_id == "llm:m" and llm.base_url == "http://x/v1"
    assert isinstance(llm.fallback, KeywordLabeler) and llm.fallback.encoder is not None
