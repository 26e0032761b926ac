"""What every labeler takes and gives: the topics of one (project, field) in, one label per topic out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# An LLM is asked for 2-5 words; keyword labels are 1-4 word phrases found in the texts (plus a few fixed
# names for chit-chat).
MIN_LABEL_WORDS = 2
MAX_LABEL_WORDS = 5


@dataclass
class TopicDocuments:
    """What a labeler sees of one topic.

    ``representative_docs``: a few member texts closest to the centroid (shown to an LLM).
    ``keywords``: c-TF-IDF keywords over the topic's members (shown to an LLM and in descriptions).
    ``texts``: a larger sample of member texts, closest first, from which keyword labels are phrased;
    empty means ``representative_docs``.
    ``centroid``: the topic's unit centroid in the embedding model's space, when the caller has it; the
    keyword labeler otherwise takes the mean embedding of ``texts``.
    """

    key: str
    representative_docs: list[str]
    keywords: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    centroid: Sequence[float] | None = None

    @property
    def sample(self) -> list[str]:
        return self.texts or self.representative_docs


@dataclass
class TopicLabel:
    """A topic's name (a short phrase), one-sentence description, and who made it (``llm:<model>`` or
    ``keywords``)."""

    key: str
    label: str
    description: str
    source: str


@runtime_checkable
class Labeler(Protocol):
    """Names all the topics of one (project, field) in one call, so it can keep their labels distinct.

    ``reserved``: labels other live topics of the same (project, field) already carry; none of the new
    labels may equal one of them (case-insensitively).
    """

    def label(
        self, topics: Sequence[TopicDocuments], *, reserved: Collection[str] = ()
    ) -> list[TopicLabel]: ...
