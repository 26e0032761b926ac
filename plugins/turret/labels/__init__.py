"""Topic labels: a short name and a one-sentence description for each topic, from keywords or an LLM.

- ``turret.labels.phrases``: c-TF-IDF keywords, candidate label phrases, the spelling check.
- ``turret.labels.keywords``: ``KeywordLabeler``, deterministic and offline: the phrase of a topic's own
  texts that is closest in meaning to the topic and farthest from its neighbours; chit-chat named as such.
- ``turret.labels.llm``: ``OpenAILabeler``, an OpenAI-compatible chat model under the same rules, the
  keyword label wherever it fails.
- here: ``get_labeler`` (which one the settings ask for) and ``label_cache_key`` (a signature of a topic's
  content and the labeler, so unchanged topics keep their label).

Every labeler takes all the topics of one (project, field) in one call and returns distinct labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from turret.labels.base import MAX_LABEL_WORDS, MIN_LABEL_WORDS, Labeler, TopicDocuments, TopicLabel
from turret.labels.keywords import CONVERSATIONAL_LABELS, KeywordLabeler
from turret.labels.llm import (
    MAX_CONSECUTIVE_API_FAILURES,
    LabelParseError,
    OpenAILabeler,
    build_prompt,
    parse_answer,
)
from turret.labels.phrases import ctfidf_keywords

if TYPE_CHECKING:
    from turret.settings import Settings

__all__ = [
    "CONVERSATIONAL_LABELS",
    "KEYWORD_LABELS_VERSION",
    "LABELS_VERSION",
    "MAX_CONSECUTIVE_API_FAILURES",
    "MAX_LABEL_WORDS",
    "MIN_LABEL_WORDS",
    "KeywordLabeler",
    "LabelParseError",
    "Labeler",
    "OpenAILabeler",
    "SettingsEncoder",
    "TopicDocuments",
    "TopicLabel",
    "build_prompt",
    "ctfidf_keywords",
    "get_labeler",
    "label_cache_key",
    "parse_answer",
]

# Part of every label cache key: raised when the labelling rules change, so stored labels are made again.
LABELS_VERSION = 2
# Part of the keyword labeler's cache keys only: raised when the keyword rules change, so stored keyword
# labels are made again while LLM labels (whose rules did not change) are not asked for again.
# 3: phrases stop at clause breaks, fragments of a longer phrase are left out, up to 4 words, contrast 0.5.
# 4: "asap", "btw", "fyi", "ty", "tia", "thnx" are chat glue.
# 5: a phrase reads as one (no "but"/"please" inside, no question word order; "long" after "how" is a
#    fragment); "hasn't", "haven't", "aren't", "wasn't" and the like, "think", "mean" and "says" are glue.
# 6: no phrase ends on the verb of a short "do" question ("plan include") or on a time adverbial ("error
#    every time"); "goes", "keeps", "instead", "maybe", "actually" and the like are glue; clauses are also
#    read as headlines, without auxiliaries ("card has been stolen" -> "card stolen").
KEYWORD_LABELS_VERSION = 6


class SettingsEncoder:
    """The settings' embedding model, loaded on first ``encode`` (a labeler must be cheap to build)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def encode(self, texts: Sequence[str]):
        from turret.embed import get_embedder

        return get_embedder(self.settings).encode(list(texts))


def get_labeler(settings: Settings) -> Labeler:
    """``OpenAILabeler`` when an API key is configured, else ``KeywordLabeler``; keyword labels are phrased
    with the settings' embedding model."""
    keywords = KeywordLabeler(encoder=SettingsEncoder(settings))
    if settings.openai_api_key:
        return OpenAILabeler(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url or None,
            model=settings.llm_model,
            fallback=keywords,
        )
    return keywords


def label_cache_key(topic: TopicDocuments, labeler_id: str) -> str:
    """A signature of what the label depends on: the representative docs (as a set), keywords, labeler and
    the version of its rules."""
    doc_hashes = sorted(hashlib.sha256(str(d).encode("utf-8")).hexdigest() for d in topic.representative_docs)
    content: dict[str, object] = {
        "docs": doc_hashes,
        "keywords": list(topic.keywords),
        "labeler": labeler_id,
        "version": LABELS_VERSION,
    }
    if labeler_id == KeywordLabeler.labeler_id:
        content["keyword_rules"] = KEYWORD_LABELS_VERSION
    payload = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
