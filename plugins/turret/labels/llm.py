"""LLM labels: an OpenAI-compatible chat model names each topic from its example texts and keywords.

The answer must be two lines, ``LABEL: ...`` and ``DESCRIPTION: ...``, and the label must follow the rules
keyword labels follow: 2-5 words, every word spelled as the topic's texts or the embedding model's vocabulary
spell it, and not the label of another topic of the same (project, field). An answer that breaks a rule is
asked again once, saying what was wrong; if the second answer breaks one too, or the API fails (after the
client's retries with exponential backoff), the topic gets its keyword label, which follows the rules by
construction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence

from turret.labels.base import MAX_LABEL_WORDS, MIN_LABEL_WORDS, Labeler, TopicDocuments, TopicLabel
from turret.labels.keywords import KeywordLabeler
from turret.labels.phrases import Spelling, model_vocabulary, tokenize

log = logging.getLogger(__name__)

MAX_PROMPT_DOCS = 8
MAX_DOC_CHARS = 300
MAX_PROMPT_KEYWORDS = 10
# After this many topics in a row fail at the API (not at parsing), stop calling it for this batch:
# a dead endpoint would otherwise cost (retries x timeout) per topic.
MAX_CONSECUTIVE_API_FAILURES = 3
# Answers that break a rule are asked again this many times, with the reason, before the keyword label.
MAX_ANSWER_RETRIES = 1

SYSTEM_PROMPT = "You write short, specific names for groups of user messages."

PROMPT_TEMPLATE = """You name clusters of messages that users sent to an AI application.

Example messages from one cluster:
{documents}

Keywords of the cluster: {keywords}

Answer with exactly two lines and nothing else:
LABEL: <a 2 to 5 word name for what these messages are about, in sentence case, like "Card delivery status">
DESCRIPTION: <one sentence describing what users ask or say>"""

RETRY_TEMPLATE = "That answer cannot be used: {reason}. Answer again with exactly the two lines asked for."

_LABEL_LINE = re.compile(r"^\s*LABEL\s*:\s*(?P<value>.+?)\s*$", re.IGNORECASE)
_DESCRIPTION_LINE = re.compile(r"^\s*DESCRIPTION\s*:\s*(?P<value>.+?)\s*$", re.IGNORECASE)


class LabelParseError(ValueError):
    """The model's answer is not the two lines asked for, or its label breaks a labelling rule."""


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


def check_label(label: str, spelling: Spelling, taken: Collection[str]) -> None:
    """Raise ``LabelParseError`` when ``label`` is another topic's (``taken``, lower case) or misspells a
    word."""
    if label.strip().lower() in taken:
        raise LabelParseError(
            f"the label {label!r} is already another topic's; give a different, more specific one"
        )
    bad = [w for w in tokenize(label) if not spelling.word_ok(w)]
    if bad:
        raise LabelParseError(f"the label {label!r} has words that look misspelt: {', '.join(bad)}")


class OpenAILabeler:
    """Labels from an OpenAI-compatible chat model, with a keyword labeler for what it cannot name."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        max_retries: int = 3,
        timeout: float = 30,
        fallback: Labeler | None = None,
        vocabulary: Collection[str] | str | None = "auto",
    ) -> None:
        # Nothing is contacted here: building a labeler must be cheap and must not fail.
        self.api_key = api_key
        self.base_url = base_url or None
        self.model = model
        self.max_retries = max_retries
        self.timeout = timeout
        self.fallback = fallback if fallback is not None else KeywordLabeler()
        self.vocabulary = vocabulary
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

    def label(self, topics: Sequence[TopicDocuments], *, reserved: Collection[str] = ()) -> list[TopicLabel]:
        topics = list(topics)
        vocabulary = model_vocabulary() if self.vocabulary == "auto" else self.vocabulary
        # A word outside the model's vocabulary must at least be one the users wrote.
        spelling = Spelling.from_texts(
            (str(d) for t in topics for d in t.sample), vocabulary, min_unknown_docs=1  # type: ignore[arg-type]
        )
        taken = {r.strip().lower() for r in reserved}
        named: dict[str, TopicLabel] = {}
        failed: dict[str, str] = {}
        api_failures = 0
        for topic in topics:
            if api_failures >= MAX_CONSECUTIVE_API_FAILURES:
                failed[topic.key] = "the API failed for the previous topics"
                continue
            try:
                result = self._name(topic, spelling, taken)
            except LabelParseError as exc:
                failed[topic.key] = f"unusable answer ({exc})"
                api_failures = 0
                continue
            except Exception as exc:  # openai.APIError and friends, or a client that cannot be built
                api_failures += 1
                failed[topic.key] = f"{type(exc).__name__}: {exc}"
                continue
            api_failures = 0
            named[topic.key] = result
            taken.add(result.label.lower())
        if failed:
            for key, why in failed.items():
                log.warning("topic %s: LLM label not used, falling back to keywords: %s", key, why)
            # The fallback sees every topic (its phrase weights compare topics) and keeps clear of the
            # labels already given.
            fallback = self.fallback.label(topics, reserved=taken)
            for lab in fallback:
                if lab.key in failed:
                    named[lab.key] = lab
        return [named[t.key] for t in topics]

    def _name(self, topic: TopicDocuments, spelling: Spelling, taken: Collection[str]) -> TopicLabel:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": build_prompt(topic)},
        ]
        for attempt in range(MAX_ANSWER_RETRIES + 1):
            answer = self._ask(messages)
            try:
                label, description = parse_answer(answer)
                check_label(label, spelling, taken)
            except LabelParseError as exc:
                if attempt == MAX_ANSWER_RETRIES:
                    raise LabelParseError(f"{exc}: {answer!r:.200}") from None
                messages += [
                    {"role": "assistant", "content": answer or ""},
                    {"role": "user", "content": RETRY_TEMPLATE.format(reason=exc)},
                ]
                continue
            return TopicLabel(topic.key, label, description, self.labeler_id)
        raise AssertionError("unreachable")

    def _ask(self, messages: list[dict[str, str]]) -> str | None:
        response = self._get_client().chat.completions.create(
            model=self.model, messages=messages, temperature=0, max_tokens=120
        )
        if not response.choices:
            return None
        return response.choices[0].message.content
