"""Topic labels: c-TF-IDF keywords, candidate phrases, the spelling check, and the keyword labeler.

The labeler's ranking by meaning is tested with the real embedding model (``slow``); everything else runs
on small hand-written texts without it. The LLM labeler: test_label_llm.py.
"""

from __future__ import annotations

import pytest
from turret.label import (
    CONVERSATIONAL_LABELS,
    KeywordLabeler,
    TopicDocuments,
    ctfidf_keywords,
    get_labeler,
    label_cache_key,
)
from turret.labels import SettingsEncoder
from turret.labels.phrases import Spelling, candidate_phrases, model_vocabulary, tokenize
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
    keywords = ctfidf_keywords(
        {"a": ["thanks!", "ok thanks", "thank you so much"], "b": ["reset my password"]}
    )
    assert keywords["a"][0] == "thanks" and "ok" in keywords["a"]
    assert "my" not in keywords["b"]
    assert "password" in keywords["b"]


def test_ctfidf_edge_cases():
    assert ctfidf_keywords({}) == {}
    assert ctfidf_keywords({"a": ["the and"], "b": []}) == {"a": [], "b": []}


# ------------------------------------------------------------------------------------------------ phrases


def test_tokenize_keeps_inner_apostrophes_and_hyphens_and_drops_digits():
    assert tokenize("My top-up didn’t work 3 times!") == ["my", "top-up", "didn't", "work", "times"]


def test_candidate_phrases_are_contiguous_and_trimmed_of_function_words():
    texts = {
        "a": ["my card has not arrived yet", "when will my card arrive", "the card has not arrived"],
        "b": ["I want to top up my account", "how do I top up", "top up failed"],
    }
    phrases = candidate_phrases(texts, spelling=Spelling.from_texts([]))
    a = {p.text for p in phrases["a"]}
    assert "card" in a and "arrived" in a
    assert "card arrived" not in a  # never made of words that are not next to each other
    assert not any(p.split()[0] in {"my", "the", "has"} or p.split()[-1] in {"my", "the"} for p in a)
    b = {p.text: p for p in phrases["b"]}
    assert "top up" in b  # a phrasal particle may end a phrase
    assert "up" not in b
    assert b["top up"].docs == 3
    # min_docs: a phrase of one text only is no candidate when the topic has more texts.
    assert "account" not in b
    assert all(p.weight > 0 for ps in phrases.values() for p in ps)
    assert phrases == candidate_phrases(texts, spelling=Spelling.from_texts([]))  # deterministic


def test_candidate_phrases_stop_at_a_clause_break():
    texts = {"a": ["Transfer from China, how long?", "a transfer from China, how long does it take"]}
    a = {p.text for p in candidate_phrases(texts, spelling=Spelling.from_texts([]))["a"]}
    assert "transfer from china" in a and "long" in a
    assert not any("china long" in p or p.startswith("china how") for p in a)


def test_fragments_of_a_longer_phrase_are_no_candidates():
    texts = {
        "a": ["how do I receive a physical card", "receive a physical card soon", "order a physical card"],
        "b": ["reset my password", "password reset", "forgot my password"],
    }
    kept = {p.text for p in candidate_phrases(texts, spelling=Spelling.from_texts([]))["a"]}
    assert "receive a physical" in kept  # without the check
    phrases = candidate_phrases(texts, spelling=Spelling.from_texts([]), max_continuation=0.75)
    a = {p.text for p in phrases["a"]}
    assert "receive a physical card" not in a  # four words: past max_words
    assert "physical card" in a and "receive" in a  # "a" after "receive" is a function word: no fragment
    assert "receive a physical" not in a and "physical" not in a  # always followed by "card"
    assert "card" not in a  # always after "physical"
    # A topic whose every phrase is a fragment keeps them rather than none.
    lone = candidate_phrases({"a": ["xylophone lessons"] * 3}, max_words=1, max_continuation=0.75)
    assert {p.text for p in lone["a"]} == {"xylophone", "lessons"}


def test_a_candidate_reads_as_one_phrase():
    texts = {
        "a": [
            "card payment but the app says no", "a card payment but the app froze",
            "play this song please save it", "the song please save it",
            "which currencies can i hold", "currencies can i hold here",
            "why would my transfer be pending", "my transfer be pending?",
            "when did my card payment go through", "my card payment did go through",
            "why hasn't my transfer gone through", "hasn't my transfer gone through",
            "my card hasn't arrived", "the card hasn't arrived yet",
            "a card to be delivered", "card to be delivered soon",
            "my card can't be activated", "the card can't be activated abroad",
            "the reset link says expired", "reset link says expired again",
        ],
        "b": ["reset my password", "password reset", "forgot my password"],
    }
    a = {p.text for p in candidate_phrases(texts, spelling=Spelling.from_texts([]), max_words=4)["a"]}
    # Nothing that runs across two clauses or keeps a question's word order.
    for phrase in ("payment but the app", "song please save", "currencies can i hold", "transfer be pending",
                   "card payment did go", "hasn't my transfer gone"):
        assert phrase not in a, phrase
    # Their parts stay, and so do negations and infinitives in a statement's order.
    assert {"card payment", "app", "song", "currencies", "transfer", "pending"} <= a
    assert {"card hasn't arrived", "card to be delivered", "card can't be activated"} <= a
    assert "reset link" in a
    for glue in ("hasn't", "says"):
        assert not any(p.split()[0] == glue or p.split()[-1] == glue for p in a), glue


def test_a_phrase_after_how_is_a_fragment_of_the_question():
    texts = {"a": ["how long do transfers take", "how long does a transfer take", "transfers take ages"],
             "b": ["reset my password", "password reset", "forgot my password"]}
    phrases = candidate_phrases(texts, spelling=Spelling.from_texts([]), max_continuation=0.75)
    a = {p.text for p in phrases["a"]}
    assert not any(p.startswith("long") for p in a)  # "how long" is one unit
    assert "transfers" in a
    without = candidate_phrases(texts, spelling=Spelling.from_texts([]))["a"]
    assert "long" in {p.text for p in without}  # only the fragment rule leaves it out


def test_the_verb_of_a_do_question_ends_no_phrase_and_does_not_cut_its_subject():
    texts = {
        "a": ["what does the enterprise plan include", "What does the Enterprise plan include?",
              "um what does the pro plan include", "how much does the pro plan cost asap",
              "whaat does the pro plan include", "um whaat does the pro plan include"],  # typo before "does"
        "b": ["how long does a transfer take to arrive", "how long does a transfer take"],
        "c": ["does the app support dark mode", "does the app support dark mode?"],
        "d": ["can i use webhooks instead of the slack integration", "use webhooks instead of teams"],
        "e": ["why isn't my top up working", "why isnt top up working for me"],
    }
    found = candidate_phrases(texts, spelling=Spelling.from_texts([]), max_words=4, max_continuation=0.75)
    a, b, c, d, e = ({p.text for p in found[k]} for k in "abcde")
    assert not any(p.endswith(("include", "cost")) and " " in p for p in a)  # "plan include", "pro plan cost"
    assert {"enterprise plan", "pro plan"} <= a  # not a fragment of "enterprise plan include"
    assert "transfer" in b and "transfer take" not in b
    assert any(p.endswith("dark mode") for p in c)  # a longer tail ends on its object: left alone
    assert "webhooks" in d and not any(p.endswith("instead") for p in d)  # an adverb is glue
    assert "top up" in e and "top up working" not in e  # a negated question: not "working"


def test_a_phrase_does_not_end_on_when():
    texts = {
        "a": ["not receiving desktop notifications all day", "i get notifications all day",
              "notifications all the time", "a one time payment", "my one time payment failed"],
        "b": ["i see a 500 error every time i upload", "error every time i try"],
    }
    found = candidate_phrases(texts, spelling=Spelling.from_texts([]), max_words=4)
    a, b = ({p.text for p in found[k]} for k in "ab")
    assert not {"notifications all day", "notifications all the time", "error every time"} & (a | b)
    assert {"notifications", "time payment"} <= a and "error" in b


def test_a_headline_drops_auxiliaries_but_never_a_negation_or_a_clause_of_its_own():
    texts = {
        "a": ["reset password link says it expired", "the reset password link says it expired?"],
        "b": ["my card has been stolen", "i think my card was stolen"],
        "c": ["the password reset email never arrives", "password reset email never arrives"],
        "d": ["can i get a new card before it expires", "a new card before it expires please"],
    }
    found = candidate_phrases(texts, spelling=Spelling.from_texts([]), max_words=4)
    a, b, c, d = ({p.text for p in found[k]} for k in "abcd")
    assert "reset password link expired" in a and "card stolen" in b
    assert not any(p.endswith("arrives") and "never" not in p for p in c if " " in p)  # no "email arrives"
    assert not any("before expires" in p for p in d)


def test_candidate_weights_favour_what_a_topic_holds_alone():
    texts = {
        "a": ["card delivery", "card delivery time", "card delivery status"],
        "b": ["card payment declined", "card payment failed", "card payment refused"],
    }
    a = {p.text: p.weight for p in candidate_phrases(texts)["a"]}
    assert a["card delivery"] > a["card"] and a["delivery"] > a["card"]


def test_a_chit_chat_topic_gets_phrases_of_its_chat_words():
    phrases = candidate_phrases({"a": ["thanks!", "ok thanks", "thanks a lot"], "b": ["reset my password"]})
    assert phrases["a"][0].text == "thanks"


@pytest.mark.parametrize(
    ("word", "ok"),
    [
        ("will", True),
        ("willl", False),  # a doubled letter next to a common word
        ("wil", False),  # in the tokenizer vocabulary, but a dropped letter of "will" 40 times as common
        ("thnks", False),  # not a word of the vocabulary and one letter from "thanks"
        ("contactless", True),  # not in the vocabulary, but used by many texts
        ("applesauce", False),  # not in the vocabulary and in one text only
        ("cards", True),  # a plural is not a misspelt singular
        ("car", True),  # a word of its own, not a slip of "card"
    ],
)
def test_spelling(word, ok):
    texts = (
        ["will it work"] * 40 + ["it wil work", "it willl work"] + ["thanks a lot"] * 10 + ["thnks"]
        + ["contactless payment"] * 4 + ["instead applesauce"] + ["my card"] * 30 + ["two cards", "my car"]
    )
    spelling = Spelling.from_texts(texts, model_vocabulary())
    assert spelling.word_ok(word) is ok


def test_model_vocabulary_is_whole_words_of_the_packaged_tokenizer():
    vocab = model_vocabulary()
    assert vocab is not None and "password" in vocab and "card" in vocab
    assert not any(w.startswith("##") or w.startswith("[") for w in vocab)
    assert "thnks" not in vocab


# ------------------------------------------------------------------------------------ keyword labeler


def _topics(groups: dict[str, list[str]]) -> list[TopicDocuments]:
    return [TopicDocuments(k, v[:5], texts=v) for k, v in groups.items()]


def test_keyword_labels_without_an_encoder_are_phrases_of_the_texts():
    labels = KeywordLabeler().label(_topics({"0": DOCS["0"], "1": DOCS["1"]}))
    assert [lab.key for lab in labels] == ["0", "1"]
    assert labels[0].label in {"Password", "Reset password", "Password reset"}
    assert labels[1].label in {"Plan", "Plan pricing", "Pricing"}
    for lab in labels:
        assert lab.source == "keywords" and lab.description.endswith(".")
        assert lab.label[0].isupper() and lab.label[1:] == lab.label[1:].lower()  # sentence case
        assert 1 <= len(lab.label.split()) <= 3


def test_keyword_labels_are_distinct_and_keep_clear_of_reserved_ones():
    # Both topics' best phrase is "card"; the one it fits best keeps it, the other moves on.
    groups = {
        "a": ["card card arrived", "card arrived late", "my card arrived"],
        "b": ["card payment", "card payment", "card declined"],
    }
    labels = KeywordLabeler().label(_topics(groups))
    assert len({lab.label.lower() for lab in labels}) == 2
    again = KeywordLabeler().label(_topics(groups), reserved=[labels[0].label.upper(), labels[1].label])
    assert not {lab.label.lower() for lab in again} & {lab.label.lower() for lab in labels}
    assert len({lab.label for lab in again}) == 2


def test_a_topic_whose_phrases_all_went_elsewhere_gets_its_best_one_numbered():
    labels = KeywordLabeler().label(_topics({"1": ["refund"] * 4, "2": ["refund"] * 3}))
    assert sorted(lab.label for lab in labels) == ["Refund", "Refund (2)"]
    reserved = KeywordLabeler().label(_topics({"3": ["refund"] * 4, "4": ["card"] * 4}),
                                      reserved=["Refund", "refund (2)"])
    assert [lab.label for lab in reserved] == ["Refund (3)", "Card"]


def test_a_topic_without_words_is_named_by_its_key_and_labels_stay_unique():
    labels = KeywordLabeler().label(_topics({"7": ["123", "456"], "8": ["😀", "!!"]}))
    assert [lab.label for lab in labels] == ["Topic 7", "Topic 8"]
    assert labels[0].description == "Messages grouped in topic 7."
    with pytest.raises(ValueError):
        KeywordLabeler().label(_topics({"1": ["a"]}) + _topics({"1": ["b"]}))
    assert KeywordLabeler().label([]) == []


def test_acronyms_and_names_keep_their_case():
    groups = {"0": ["the ATM ate my card", "ATM kept my card", "an ATM swallowed it"], "1": DOCS["1"]}
    label = KeywordLabeler(contrast=0).label(_topics(groups))[0].label
    assert label.startswith("ATM") or " ATM" in label


def test_misspellings_never_make_a_label():
    groups = {
        "0": ["wil it rain", "willl it rain", "wil it be sunny"] + ["will it rain tomorrow"] * 20,
        "1": ["thnks", "thnks!!"] + ["thanks"] * 20,
    }
    labels = KeywordLabeler().label(_topics(groups))
    words = {w.lower() for lab in labels for w in lab.label.split()}
    assert not words & {"wil", "willl", "thnks"}


# The meaning-based ranking, with the real embedding model.

SUBJECTS = {
    "password": ["How do I reset my password?", "I forgot my password", "password reset link expired",
                 "reset password email never came", "can't reset my password", "change my password please"],
    "delivery": ["when will my new card arrive", "my card has not arrived yet", "card delivery is too slow",
                 "how long does card delivery take", "still waiting for my card to arrive",
                 "track my card delivery"],
    "weather": ["will it rain tomorrow", "what is the weather like today", "is it going to be sunny",
                "weather forecast for the weekend", "do I need an umbrella today", "how cold is it outside"],
    "thanks": ["thanks", "thank you so much", "thanks, bye", "ok thank you, goodbye", "thanks a lot", "bye"],
    "yesno": ["yes", "no", "yes please", "no thanks", "yeah sure", "nope"],
    "greeting": ["hi", "hello", "hey there", "good morning", "hello!", "hi there"],
}


@pytest.fixture(scope="module")
def encoder():
    from turret.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", num_threads=1)


@pytest.mark.slow
def test_keyword_labels_by_meaning(encoder):
    topics = _topics(SUBJECTS)
    labels = {lab.key: lab.label for lab in KeywordLabeler(encoder).label(topics)}
    assert "password" in labels["password"].lower()
    assert "card" in labels["delivery"].lower() or "deliver" in labels["delivery"].lower()
    assert labels["weather"].lower() in {"weather", "weather forecast", "weather like", "rain", "sunny"}
    assert labels["thanks"] == CONVERSATIONAL_LABELS["closing"]
    assert labels["yesno"] == CONVERSATIONAL_LABELS["confirmation"]
    assert labels["greeting"] == CONVERSATIONAL_LABELS["greeting"]
    assert len(set(labels.values())) == len(labels)
    # Centroids given by the caller (the topic engine's) are used as they are; the same labels come back.
    with_centroids = [
        TopicDocuments(t.key, t.representative_docs, texts=t.texts, centroid=encoder.encode(t.texts).mean(0))
        for t in topics
    ]
    assert {lab.key: lab.label for lab in KeywordLabeler(encoder).label(with_centroids)} == labels
    assert {lab.key: lab.label for lab in KeywordLabeler(encoder).label(topics)} == labels  # deterministic


@pytest.mark.slow
def test_the_label_is_the_best_scored_candidate(encoder):
    """``candidates_of`` and ``score`` are the labeler's own steps: ranking a topic's candidates by ``score``
    gives the label ``label`` chose (no two topics here want one phrase)."""
    import numpy as np

    topics = _topics({k: SUBJECTS[k] for k in ("password", "delivery", "weather")})
    labeler = KeywordLabeler(encoder)
    candidates = labeler.candidates_of(topics)
    assert candidates.vectors.shape == (len(candidates.texts), 384)
    assert candidates.centroids.shape == (3, 384)
    S = candidates.similarity()
    labels = {lab.key: lab.label.lower() for lab in labeler.label(topics)}
    for j, topic in enumerate(topics):
        idx = candidates.rows(topic.key)
        assert [candidates.texts[i] for i in idx] == [p.text for p in candidates.phrases[topic.key]]
        own, other = S[idx, j], np.delete(S[idx], j, axis=1).max(axis=1)
        words = np.array([len(p.text.split()) - 1 for p in candidates.phrases[topic.key]])
        best = candidates.phrases[topic.key][int(np.argmax(labeler.score(own, other, words)))]
        assert best.text == labels[topic.key]
    without = KeywordLabeler().candidates_of(topics)
    assert without.phrases == candidates.phrases and without.vectors is None
    with pytest.raises(ValueError, match="without an encoder"):
        without.similarity()


@pytest.mark.slow
def test_two_chit_chat_topics_of_one_kind_do_not_share_a_name(encoder):
    groups = {
        "yes": ["yes", "yes please", "yeah", "yes it is", "yep"],
        "no": ["no", "no thanks", "nope", "no it isn't"],
    }
    labels = [lab.label for lab in KeywordLabeler(encoder).label(_topics(groups))]
    assert CONVERSATIONAL_LABELS["confirmation"] in labels
    assert len(set(labels)) == 2


@pytest.mark.slow
def test_acknowledgements_whose_words_another_topic_took_are_named_as_chit_chat(encoder):
    """Two acknowledgement topics of a demo run: the bigger one keeps the content word ("Worked"), the other
    one, left with no phrase of its own, is named for its kind instead of "Topic 39"."""
    groups = {
        "0": ["that worked", "it worked, thanks", "works now", "worked", "nice, that worked"],
        "39": ["ok", "Ok", "ok that worked", "ok!!", "Ok tahnks"],
    }
    labels = {lab.key: lab.label for lab in KeywordLabeler(encoder).label(_topics(groups))}
    assert not labels["39"].startswith("Topic ")
    assert len(set(labels.values())) == 2


def test_get_labeler_phrases_keyword_labels_with_the_settings_model(turret_home):
    labeler = get_labeler(Settings())
    assert isinstance(labeler, KeywordLabeler)
    assert isinstance(labeler.encoder, SettingsEncoder)  # nothing loaded yet: building a labeler is cheap


def test_label_cache_key():
    topic = TopicDocuments("0", ["b", "a"], ["k1", "k2"])
    key = label_cache_key(topic, "keywords")
    assert key == label_cache_key(TopicDocuments("9", ["a", "b"], ["k1", "k2"]), "keywords")  # doc order, key
    assert key != label_cache_key(topic, "llm:gpt-4o-mini")
    assert key != label_cache_key(TopicDocuments("0", ["a", "c"], ["k1", "k2"]), "keywords")
    assert key != label_cache_key(TopicDocuments("0", ["a", "b"], ["k2", "k1"]), "keywords")


def test_keyword_rules_version_renews_keyword_labels_only(monkeypatch):
    import turret.labels as labels

    topic = TopicDocuments("0", ["a", "b"], ["k1"])
    keywords, llm = label_cache_key(topic, "keywords"), label_cache_key(topic, "llm:gpt-4o-mini")
    monkeypatch.setattr(labels, "KEYWORD_LABELS_VERSION", labels.KEYWORD_LABELS_VERSION + 1)
    assert label_cache_key(topic, "keywords") != keywords  # keyword labels are made again
    assert label_cache_key(topic, "llm:gpt-4o-mini") == llm  # the LLM is not asked again
