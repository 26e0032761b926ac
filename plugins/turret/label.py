"""Topic labels: a short name and one-sentence description for each topic, by LLM or from keywords.

- ``ctfidf_keywords``: class-based TF-IDF (BERTopic's formula) over each topic's documents.
- ``KeywordLabeler``: deterministic, offline; "Password Reset" from the top keywords.
- ``OpenAILabeler``: asks an OpenAI-compatible chat model for two lines, ``LABEL: ...`` and
  ``DESCRIPTION: ...``, parses them strictly and falls back to the keyword label, per topic, whenever the
  API fails (after the client's retries with exponential backoff) or answers something unusable.
- ``label_cache_key``: a signature of a topic's content and the labeler, so unchanged topics keep their label.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from turret.settings import Settings

log = logging.getLogger(__name__)

MIN_LABEL_WORDS = 2
MAX_LABEL_WORDS = 5
MAX_PROMPT_DOCS = 8
MAX_DOC_CHARS = 300
MAX_PROMPT_KEYWORDS = 10
# After this many topics in a row fail at the API (not at parsing), stop calling it for this batch:
# a dead endpoint would otherwise cost (retries x timeout) per topic.
MAX_CONSECUTIVE_API_FAILURES = 3


@dataclass
class TopicDocuments:
    """What a labeler sees of one topic."""

    key: str
    representative_docs: list[str]
    keywords: list[str] = field(default_factory=list)


@dataclass
class TopicLabel:
    """A topic's name (2-5 words), one-sentence description, and who made it (``llm:<model>``/``keywords``)."""

    key: str
    label: str
    description: str
    source: str


@runtime_checkable
class Labeler(Protocol):
    def label(self, topics: Sequence[TopicDocuments]) -> list[TopicLabel]: ...


# ------------------------------------------------------------------------------------------------ keywords


# Words that say nothing about a topic: sklearn's English list, the glue of chat messages, contractions, and
# the commonest function words of Spanish, French and German (assistants often get a few of those).
_CHAT_WORDS = """
hi hey hello hiya thanks thank thx please pls plz ok okay yes yeah yep no nope sure great cool awesome
need needs want wants wanted help helps like just know let lets tell trying try tried able really also
does doesn doesn't don don't isn isn't can't cannot won't wouldn't couldn't shouldn't didn didn't i'm i've
i'd i'll it's that's there's what's how's you're we're they're can could would should will shall may might
get gets got getting use using used way thing things stuff anyone someone guys question quick possible
do doing done make makes made go going im ive dont cant wont whats hows youre
""".split()
_FOREIGN_WORDS = """
de la que el en y a los se del las un por con no una su para es al lo como más o pero sus le ya mi me
cómo puedo qué quiero hay este esta mis tu te
le les des du une et est je mon ma mes pour pas qui dans il ne sur avec ce faire comment puis peux
veux sont ai nous vous
der die das und ich ist nicht ein eine zu mit wie kann mein meine den dem im auf für es sie wir ihr
habe hat bitte kann warum wo was
""".split()


def _stop_words(keep_chat: bool = False) -> list[str]:
    """Words never taken as keywords. With ``keep_chat`` the chat glue is allowed (for a topic made only of
    "thanks!" and "ok"), while pure function words ("the", "of", "de") still are not."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = set(ENGLISH_STOP_WORDS) | set(_FOREIGN_WORDS)
    return sorted(words - set(_CHAT_WORDS) if keep_chat else words | set(_CHAT_WORDS))


def ctfidf_keywords(docs_by_topic: Mapping[str, Sequence[str]], top_n: int = 10) -> dict[str, list[str]]:
    """Top keywords per topic; a topic made only of chat words ("thanks!", "ok") keeps those as its keywords."""
    result = _ctfidf(docs_by_topic, top_n, _stop_words())
    if any(not words for words in result.values()):
        chat = _ctfidf(docs_by_topic, top_n, _stop_words(keep_chat=True))
        result = {k: words or chat.get(k, []) for k, words in result.items()}
    return result


def _ctfidf(
    docs_by_topic: Mapping[str, Sequence[str]], top_n: int, stop_words: list[str] | None
) -> dict[str, list[str]]:
    """Top ``top_n`` 1-2-gram keywords per topic by class-based TF-IDF, English stop words removed.

    BERTopic's c-TF-IDF: the documents of a topic are one class document; ``tf`` is a term's frequency in the
    class, L1-normalized per class; ``idf = log(1 + A / f)`` with ``A`` the average number of words per class
    and ``f`` the term's frequency over all classes. Ties are broken alphabetically (deterministic).
    """
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    import scipy.sparse as sp

    keys = list(docs_by_topic)
    result: dict[str, list[str]] = {k: [] for k in keys}
    docs: list[str] = []
    owner: list[int] = []
    for i, key in enumerate(keys):
        for doc in docs_by_topic[key]:
            docs.append(str(doc).replace("\u2019", "'"))
            owner.append(i)
    if not docs or not any(d.strip() for d in docs):
        return result
    # n-grams are counted per document (never across two messages), then summed per class.
    vectorizer = CountVectorizer(
        stop_words=stop_words, ngram_range=(1, 2), token_pattern=r"(?u)\b[^\W\d_][\w'-]+\b"
    )
    try:
        per_doc = vectorizer.fit_transform(docs)
    except ValueError:  # only stop words: empty vocabulary
        return result
    membership = sp.csr_matrix(
        (np.ones(len(docs)), (np.asarray(owner), np.arange(len(docs)))), shape=(len(keys), len(docs))
    )
    counts = membership @ per_doc
    terms = vectorizer.get_feature_names_out()
    counts = counts.astype(np.float64).toarray()
    row_sums = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    term_freq = counts.sum(axis=0)
    avg_words = counts.sum() / len(keys)
    idf = np.log(1 + avg_words / term_freq)
    scores = tf * idf
    for i, key in enumerate(keys):
        row = scores[i]
        ranked = sorted((j for j in np.nonzero(row > 0)[0]), key=lambda j: (-row[j], terms[j]))
        result[key] = [str(terms[j]) for j in ranked[:top_n]]
    return result


def _title(words: Sequence[str]) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in words)


def _join_english(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class KeywordLabeler:
    """A label from the top keywords, no model involved; the fallback of every other labeler."""

    labeler_id = "keywords"

    def label(self, topics: Sequence[TopicDocuments]) -> list[TopicLabel]:
        return [self.label_one(t) for t in topics]

    def label_one(self, topic: TopicDocuments) -> TopicLabel:
        keywords = [k.strip() for k in topic.keywords if k and k.strip()]
        words = self._label_words(keywords)
        if len(words) >= MIN_LABEL_WORDS:
            label = _title(words)
        elif words:
            label = f"{_title(words)} Topic"
        else:
            label = f"Topic {topic.key}"
        if keywords:
            description = f"Messages about {_join_english(keywords[:3])}."
        else:
            description = f"Messages grouped in topic {topic.key}."
        return TopicLabel(key=topic.key, label=label, description=description, source="keywords")

    @staticmethod
    def _label_words(keywords: list[str]) -> list[str]:
        # A bigram among the top three reads most naturally ("reset password"); else the top two terms.
        # Inflections of one word count once ("notification" and "notifications" make no label).
        for kw in keywords[:3]:
            parts = kw.split()
            if MIN_LABEL_WORDS <= len(parts) <= MAX_LABEL_WORDS and not _has_inflections(parts):
                return parts
        words: list[str] = []
        for kw in keywords:
            for w in kw.split():
                if not _has_inflections([*words, w]):
                    words.append(w)
            if len(words) >= MIN_LABEL_WORDS:
                break
        return words[:MAX_LABEL_WORDS]


def _has_inflections(words: Sequence[str]) -> bool:
    """Whether two of ``words`` are one word with and without a plural or verb ending (-s, -es, -ed, -ing)."""
    forms = [w.lower() for w in words]
    for i, a in enumerate(forms):
        for b in forms[i + 1:]:
            short, long = sorted((a, b), key=len)
            if long == short or any(long == short + end for end in ("s", "es", "ed", "d", "ing")):
                return True
    return False


# ------------------------------------------------------------------------------------------------- the LLM

PROMPT_TEMPLATE = """You name clusters of messages that users sent to an AI application.

Example messages from one cluster:
{documents}

Keywords of the cluster: {keywords}

Answer with exactly two lines and nothing else:
LABEL: <a 2 to 5 word name for what these messages are about, in title case>
DESCRIPTION: <one sentence describing what users ask or say>"""

_LABEL_LINE = re.compile(r"^\s*LABEL\s*:\s*(?P<value>.+?)\s*$", re.IGNORECASE)
_DESCRIPTION_LINE = re.compile(r"^\s*DESCRIPTION\s*:\s*(?P<value>.+?)\s*$", re.IGNORECASE)


class LabelParseError(ValueError):
    """The model's answer is not the two lines asked for."""


def build_prompt(topic: TopicDocuments) -> str:
    """The user message for one topic: up to 8 truncated example documents and the keywords."""
    docs = []
    for doc in topic.representative_docs[:MAX_PROMPT_DOCS]:
        text = " ".join(str(doc).split())
        if len(text) > MAX_DOC_CHARS:
            text = text[: MAX_DOC_CHARS - 1].rstrip() + "…"
        docs.append(f"- {text}")
    keywords = ", ".join(topic.keywords[:MAX_PROMPT_KEYWORDS]) or "(none)"
    return PROMPT_TEMPLATE.format(documents="\n".join(docs) or "- (no examples)", keywords=keywords)


def parse_answer(text: str | None) -> tuple[str, str]:
    """(label, description) from an answer of exactly a LABEL line and a DESCRIPTION line."""
    if not text or not text.strip():
        raise LabelParseError("empty answer")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) != 2:
        raise LabelParseError(f"expected 2 lines, got {len(lines)}")
    label_m, desc_m = _LABEL_LINE.match(lines[0]), _DESCRIPTION_LINE.match(lines[1])
    if not label_m or not desc_m:
        raise LabelParseError("lines do not start with 'LABEL:' and 'DESCRIPTION:'")
    label = label_m.group("value").strip().strip("\"'*`").rstrip(".").strip()
    words = label.split()
    if not MIN_LABEL_WORDS <= len(words) <= MAX_LABEL_WORDS:
        raise LabelParseError(f"label {label!r} has {len(words)} words, expected 2-5")
    description = desc_m.group("value").strip().strip("\"'*`").strip()
    if len(description.split()) < 3:
        raise LabelParseError(f"description {description!r} is too short")
    if description[-1] not in ".!?":
        description += "."
    return label, description


class OpenAILabeler:
    """Labels from an OpenAI-compatible chat model, with a per-topic fallback labeler."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        max_retries: int = 3,
        timeout: float = 30,
        fallback: Labeler | None = None,
    ) -> None:
        # Nothing is contacted here: building a labeler must be cheap and must not fail.
        self.api_key = api_key
        self.base_url = base_url or None
        self.model = model
        self.max_retries = max_retries
        self.timeout = timeout
        self.fallback = fallback if fallback is not None else KeywordLabeler()
        self._client = None

    @property
    def labeler_id(self) -> str:
        return f"llm:{self.model}"

    def _get_client(self):
        if self._client is None:
            from openai import OpenAI

            # The client retries connection errors, timeouts, 408/409/429 and 5xx with exponential
            # backoff (0.5 s doubling, capped at 8 s, jittered), honouring Retry-After headers.
            self._client = OpenAI(
                api_key=self.api_key,
                base_url=self.base_url,
                max_retries=self.max_retries,
                timeout=self.timeout,
            )
        return self._client

    def label(self, topics: Sequence[TopicDocuments]) -> list[TopicLabel]:
        labels = []
        api_failures = 0
        for topic in topics:
            if api_failures >= MAX_CONSECUTIVE_API_FAILURES:
                labels.append(self._fall_back(topic, "the API failed for the previous topics"))
                continue
            try:
                answer = self._ask(topic)
            except Exception as exc:  # openai.APIError and friends, or a client that cannot be built
                api_failures += 1
                labels.append(self._fall_back(topic, f"{type(exc).__name__}: {exc}"))
                continue
            api_failures = 0
            try:
                label, description = parse_answer(answer)
            except LabelParseError as exc:
                labels.append(self._fall_back(topic, f"unusable answer ({exc}): {answer!r:.200}"))
                continue
            labels.append(TopicLabel(topic.key, label, description, self.labeler_id))
        return labels

    def _ask(self, topic: TopicDocuments) -> str | None:
        response = self._get_client().chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": "You write short, specific names for groups of user messages."},
                {"role": "user", "content": build_prompt(topic)},
            ],
            temperature=0,
            max_tokens=120,
        )
        if not response.choices:
            return None
        return response.choices[0].message.content

    def _fall_back(self, topic: TopicDocuments, why: str) -> TopicLabel:
        log.warning("topic %s: LLM label not used, falling back to keywords: %s", topic.key, why)
        return self.fallback.label([topic])[0]


def get_labeler(settings: "Settings") -> Labeler:
    """``OpenAILabeler`` when an API key is configured, else ``KeywordLabeler``."""
    if settings.openai_api_key:
        return OpenAILabeler(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url or None,
            model=settings.llm_model,
        )
    return KeywordLabeler()


def label_cache_key(topic: TopicDocuments, labeler_id: str) -> str:
    """A signature of what the label depends on: the representative docs (as a set), keywords, labeler."""
    doc_hashes = sorted(hashlib.sha256(str(d).encode("utf-8")).hexdigest() for d in topic.representative_docs)
    payload = json.dumps(
        {"docs": doc_hashes, "keywords": list(topic.keywords), "labeler": labeler_id},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

