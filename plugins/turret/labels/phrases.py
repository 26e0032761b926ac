"""Words and phrases of topics: c-TF-IDF keywords, and the candidate phrases keyword labels are made of.

- ``ctfidf_keywords``: class-based TF-IDF (BERTopic's formula) over each topic's documents, 1-2-grams.
- ``candidate_phrases``: 1-4-word phrases that occur *contiguously* within a clause of a topic's texts,
  never starting or ending with a function word nor a fragment of a longer phrase, each with its c-TF-IDF
  weight (the share of the topic's texts holding it, times BERTopic's ``log(1 + A / f)``).
- ``Spelling``: whether a word is spelled as people spell it, judged from the texts themselves and the
  embedding model's tokenizer vocabulary (see its docstring).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

# Words that say nothing about a topic: sklearn's English list, the glue of chat messages, contractions, and
# the commonest function words of Spanish, French and German (assistants often get a few of those).
_CHAT_WORDS = """
hi hey hello hiya thanks thank thx thnx ty tia please pls plz asap btw fyi ok okay yes yeah yep no nope sure
great cool awesome bye goodbye cheers
need needs want wants wanted help helps like just know let lets tell trying try tried able really also
does doesn doesn't don don't isn isn't can't cannot won't wouldn't couldn't shouldn't didn didn't i'm i've
i'd i'll it's that's there's what's how's you're we're they're can could would should will shall may might
hasn't haven't hadn't aren't wasn't weren't mustn't needn't
get gets got getting use using used way thing things stuff anyone someone guys question quick possible
think mean means says said goes went keeps kept
instead anymore actually maybe probably currently usually recently basically literally definitely certainly
kinda sorta quite um umm uh uhh hmm hm er erm ah oh
do doing done did does make makes made go going im ive dont cant wont whats hows youre
""".split()
_FOREIGN_WORDS = """
de la que el en y a los se del las un por con no una su para es al lo como más o pero sus le ya mi me
cómo puedo qué quiero hay este esta mis tu te
le les des du une et est je mon ma mes pour pas qui dans il ne sur avec ce faire comment puis peux
veux sont ai nous vous
der die das und ich ist nicht ein eine zu mit wie kann mein meine den dem im auf für es sie wir ihr
habe hat bitte kann warum wo was
""".split()
# Words of sklearn's English list that name things users ask about ("top up", "bill", "name", "call").
_CONTENT_WORDS = frozenset("""
top bill fire system call interest amount move empty full show side front back name detail describe cry
thick thin fill computer bottom serious part find found give put keep last first
""".split())
# A phrase may end in one of these when a content word comes first: "top up", "turn off", "log in".
_PARTICLES = frozenset("up down off on out in back over".split())
# Words no phrase may start or end with even when a topic is all chit-chat.
_FUNCTION_ONLY = frozenset(
    "a an the of to for and or but in on at by with from my your me i you it is are".split()
)

# Words inside a phrase that show it runs across two clauses or reads as a question's inverted word order
# ("payment but the app", "song please save", "long do transfers", "currencies can i hold", "transfer be
# pending"): such a phrase is no label, though its parts may be.
_JOINERS = frozenset("but please pls plz because".split())
_DO = frozenset("do does did".split())
# A question's head before its subject, as "do" is: "why isn't my (top up) working" (negated, so a phrase
# running into its verb would say the opposite: "top up working").
_INVERSION_HEADS = _DO | frozenset(
    "don't doesn't didn't isn't aren't wasn't weren't hasn't haven't won't can't couldn't wouldn't"
    " dont doesnt didnt isnt arent wasnt hasnt havent wont cant".split()
)
# Where the tail of such a question ends, before what follows its verb: "take (to arrive)", "working (for)".
_TAIL_STOPS = frozenset("to for with in on at from by using when if because so".split())
_AUXILIARIES = frozenset(
    "can could will would should shall may might must is are was were am has have had".split()
)
_SUBJECTS = frozenset("i you we they he she".split())
# What may come before "be" inside a phrase: "card to be delivered", "identity can't be verified".
_BEFORE_BE = _AUXILIARIES | frozenset("to can't cannot won't wouldn't couldn't shouldn't mustn't".split())
# Words between "do" and the subject of a question ("what does the plan include"): the subject comes next.
_DETERMINERS = frozenset("the a an my your our their his her its this that these those".split())
# A phrase ending on a time adverbial says when, not what: "notifications all day", "error every time".
_TIME_QUANTIFIERS = frozenset("all every each this last next per".split())
_TIME_NOUNS = frozenset(
    "time times day days week weeks month months year years morning mornings night nights evening hour hours"
    " minute minutes".split()
)
# Words a headline drops ("link says it expired" -> "link expired"): auxiliaries, "it", reporting verbs.
_HEADLINE_DROP = frozenset("is are was were been has have had got gets it says said keeps kept".split())
# After these a clause of its own starts, which a headline keeps whole: "card before it expires".
_SUBORDINATORS = frozenset(
    "that which who whom whose before after when whenever while if unless because since until though as"
    .split()
)
# Words that may close a message after its question: "how much does the pro plan cost asap".
_CLOSERS = frozenset("asap please pls plz thanks thank thx thnx ty tia btw fyi ok okay now".split())
# "how" makes one unit of the word after it ("how long", "how often"): a phrase it mostly comes before is a
# fragment, like one a content word mostly comes before.
_UNIT_HEADS = frozenset({"how"})

_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
# Where a phrase may not run on: "from China, how long" holds no phrase "china how long".
_CLAUSE_BREAK = re.compile(r"[,.;:!?()\[\]{}\"\u201c\u201d]+|\s[-\u2013\u2014]+\s")


@functools.lru_cache(maxsize=2)
@functools.cache
def stop_words(keep_chat: bool = False) -> frozenset[str]:
    """Words never taken as keywords. With ``keep_chat`` the chat glue is allowed (for a topic made only of
    "thanks!" and "ok"), while pure function words ("the", "of", "de") still are not."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = (set(ENGLISH_STOP_WORDS) - _CONTENT_WORDS) | set(_FOREIGN_WORDS)
    return frozenset(words - set(_CHAT_WORDS) if keep_chat else words | set(_CHAT_WORDS))


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters, inner apostrophes and hyphens; no digits)."""
    return _WORD.findall(str(text).replace("\u2019", "'").lower())


# ------------------------------------------------------------------------------------------------ keywords


def ctfidf_keywords(docs_by_topic: Mapping[str, Sequence[str]], top_n: int = 10) -> dict[str, list[str]]:
    """Top keywords per topic; a topic made only of chat words ("thanks!", "ok") keeps those as keywords."""
    result = _ctfidf(docs_by_topic, top_n, sorted(stop_words()))
    if any(not words for words in result.values()):
        chat = _ctfidf(docs_by_topic, top_n, sorted(stop_words(keep_chat=True)))
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
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer

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


# ------------------------------------------------------------------------------------------ label phrases


@dataclass(frozen=True)
class Phrase:
    """A candidate label phrase of one topic: its words, how many of the topic's texts hold it, its
    c-TF-IDF weight, and whether it is made of chat words only (the topic had no content phrase)."""

    text: str
    docs: int
    weight: float
    chat: bool = False


def _phrases_of(
    tokens: Sequence[str], max_words: int, stop: frozenset[str]
) -> list[tuple[str, str | None, str | None]]:
    """Each phrase of ``tokens`` with the content words right before and after it (``None``: a function
    word, or the clause's edge)."""
    glue = stop_words()
    verb_at = _do_question_verb(tokens, glue)
    out = []
    for i, first in enumerate(tokens):
        if first in stop or first in _FUNCTION_ONLY or len(first) < 2:  # "s" of "what s" is no word
            continue
        previous = tokens[i - 1] if i > 0 else None
        before = previous if previous not in glue or previous in _UNIT_HEADS else None
        for n in range(1, max_words + 1):
            if i + n > len(tokens):
                break
            last = tokens[i + n - 1]
            if n > 1 and (
                last in _FUNCTION_ONLY or len(last) < 2 or (last in stop and last not in _PARTICLES)
            ):
                continue
            if n > 2 and not _reads_as_one_phrase(tokens[i : i + n]):
                continue
            nxt = tokens[i + n] if i + n < len(tokens) else None
            if verb_at is not None and n > 1 and i + n - 1 == verb_at:
                continue  # the subject and the question's verb: "plan include", "transfer take"
            if n > 2 and last in _TIME_NOUNS and _TIME_QUANTIFIERS & set(tokens[i + 1 : i + n - 1][-2:]):
                continue  # ends on when, not what: "notifications all day", "error every time"
            continues = nxt is not None and (nxt not in glue or nxt in _PARTICLES) and i + n != verb_at
            after = nxt if continues else None
            out.append((" ".join(tokens[i : i + n]), before, after))
    return out


def _with_headlines(clauses: list[list[str]]) -> list[list[str]]:
    """Each clause, and where it has any, the clause without auxiliaries and "it", as a headline drops them:
    "reset password link says it expired" also reads "reset password link expired", "my card has been
    charged twice" also "my card charged twice". Negations stay where they are; right after "that",
    "before", "when"... nothing is dropped ("a new card before it expires")."""
    out = list(clauses)
    for tokens in clauses:
        short: list[str] = []
        for w in tokens:  # after "that", "before", "when"... a clause of its own starts: kept whole
            if w not in _HEADLINE_DROP or (short and short[-1] in _SUBORDINATORS):
                short.append(w)
        if len(short) < len(tokens):
            out.append(short)
    return out


def _do_question_verb(tokens: Sequence[str], glue: frozenset[str]) -> int | None:
    """Where a short "do" question about a thing puts its verb: "what does the (enterprise plan) include",
    "how long does a (transfer) take to arrive", "why isn't my (top up) working". "do", or a negated
    auxiliary heading the clause (after question words at most), then a subject of one or two words (after
    a determiner), then one word before the clause ends (closers like "asap" aside) or a preposition: that
    word is the verb, and a phrase ending on it is no label ("plan include", "top up working"); the
    subject's phrase is whole though the verb follows it. Longer tails are left alone: "does the app
    support dark mode" ends on its object. ``glue``: ``stop_words()``."""
    do_at, statement = None, False
    for d, w in enumerate(tokens[:-1]):
        # A negated auxiliary after a content word is a statement's ("my card can't be activated").
        if w in _INVERSION_HEADS and tokens[d + 1] not in _SUBJECTS and (w in _DO or not statement):
            do_at = d
            break
        statement = statement or (w not in glue and not (d and tokens[d - 1] in _UNIT_HEADS))
    if do_at is None:
        return None
    start = do_at + 1 + (tokens[do_at + 1] in _DETERMINERS)
    end = next((k for k in range(start, len(tokens)) if tokens[k] in _TAIL_STOPS), len(tokens))
    while end > start and tokens[end - 1] in _CLOSERS:
        end -= 1
    return end - 1 if 2 <= end - start <= 3 else None


def _reads_as_one_phrase(words: Sequence[str]) -> bool:
    """No word inside ``words`` joins two clauses ("but", "please"), and none inverts a question's order:
    "do" inside, "be" without "to" or a modal before it ("transfer be pending"), or an auxiliary before its
    subject ("can i")."""
    for k in range(1, len(words) - 1):
        word = words[k]
        if word in _JOINERS or word in _DO or (word == "be" and words[k - 1] not in _BEFORE_BE):
            return False
        if word in _AUXILIARIES and words[k + 1] in _SUBJECTS:
            return False
    return True


def candidate_phrases(
    texts_by_topic: Mapping[str, Sequence[str]],
    *,
    max_words: int = 3,
    min_docs: int = 2,
    top_n: int = 30,
    spelling: Spelling | None = None,
    max_continuation: float | None = None,
) -> dict[str, list[Phrase]]:
    """Up to ``top_n`` candidate phrases per topic, best c-TF-IDF weight first (ties alphabetical).

    A phrase is 1 to ``max_words`` contiguous words of one clause of a text (never across a comma, stop or
    bracket), starting and ending with a content word (a phrasal particle may end it: "top up"). It must
    occur in ``min_docs`` of the topic's texts (all of them when the topic has fewer). With
    ``max_continuation``, a phrase that one content word follows (or precedes) in more than that share of
    its texts is a fragment and left out: "receive a physical" (then "card"), "american express to add",
    "long do transfers" (after "how"; unless every phrase of the topic is). A phrase of 3 or more words
    must read as one: no "but" or "please" inside, no question word order ("currencies can i hold"); no
    phrase ends on the verb of a short question ("plan include" of "what does the enterprise plan
    include") or on a time adverbial ("notifications all day"). Each clause is also read as a headline,
    without auxiliaries ("reset password link says it expired": "reset password link expired"). Its
    weight is the share of the topic's texts holding it times ``log(1 + A / f)``, ``A`` the mean number of
    phrase occurrences per topic and ``f`` the phrase's occurrences over all topics: a phrase every topic
    uses weighs little. Words ``spelling`` rejects are left out. A topic whose texts hold only chat words
    ("thanks!", "ok") gets phrases of those.
    """
    spelling = spelling or Spelling.from_texts(t for texts in texts_by_topic.values() for t in texts)
    per_topic: dict[str, Counter[str]] = {}
    sizes: dict[str, int] = {}
    total: Counter[str] = Counter()
    chat_only: dict[str, bool] = {}
    for key, texts in texts_by_topic.items():
        token_lists = [_with_headlines([tokenize(c) for c in _CLAUSE_BREAK.split(str(t))]) for t in texts]
        sizes[key] = max(1, len(texts))
        need = min(min_docs, sizes[key])
        # Chit-chat only ("thanks!", "ok"): when no content phrase is common enough, let its words speak.
        for keep_chat in (False, True):
            counts: Counter[str] = Counter()
            context: Counter[tuple[str, str]] = Counter()  # (phrase, "<word" / ">word"), in texts
            for clauses in token_lists:
                found = [o for c in clauses for o in _phrases_of(c, max_words, stop_words(keep_chat))]
                counts.update({p for p, _, _ in found if spelling.phrase_ok(p)})
                if max_continuation is not None:
                    context.update(
                        {(p, "<" + b) for p, b, _ in found if b} | {(p, ">" + a) for p, _, a in found if a}
                    )
            common = Counter({p: c for p, c in counts.items() if c >= need})
            if max_continuation is not None:
                # "receive a physical" is nearly always followed by "card": a fragment, not a phrase.
                cut = {p for (p, _), c in context.items() if p in common and c > max_continuation * counts[p]}
                common = Counter({p: c for p, c in common.items() if p not in cut}) or common
            chat_only[key] = keep_chat
            if common:
                break
        per_topic[key] = common
        total.update(counts)  # every occurrence counts against a phrase's weight elsewhere
    mean_per_topic = sum(total.values()) / max(1, len(per_topic))
    out: dict[str, list[Phrase]] = {}
    for key, counts in per_topic.items():
        scored = [
            Phrase(p, c, (c / sizes[key]) * math.log(1 + mean_per_topic / total[p]), chat_only[key])
            for p, c in counts.items()
        ]
        scored.sort(key=lambda ph: (-ph.weight, ph.text))
        out[key] = scored[:top_n]
    return out


# ----------------------------------------------------------------------------------------------- spelling


class Spelling:
    """Which words may appear in a label, from how the texts themselves spell them.

    A misspelling is rare next to the word it misspells: a word is rejected when a word one edit away
    (a letter added, dropped, swapped or changed) occurs ``ratio`` times as often in the texts ("willl",
    "wil" next to "will"; "thnks" next to "thanks"). A word outside the embedding model's tokenizer
    vocabulary (which a misspelling splits into word pieces) must also occur in ``min_unknown_docs``
    texts: "contactless" or "paypal" pass in a topic about them, a one-off typo does not.
    """

    def __init__(
        self,
        doc_counts: Mapping[str, int],
        vocabulary: Collection[str] | None = None,
        *,
        ratio: float = 5.0,
        min_unknown_docs: int = 3,
    ) -> None:
        self.doc_counts = doc_counts
        self.vocabulary = vocabulary
        self.ratio = ratio
        self.min_unknown_docs = min_unknown_docs
        self._cache: dict[str, bool] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str], vocabulary: Collection[str] | None = None, **kw) -> Spelling:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(set(tokenize(text)))
        return cls(counts, vocabulary, **kw)

    def word_ok(self, word: str) -> bool:
        ok = self._cache.get(word)
        if ok is None:
            ok = self._cache[word] = self._judge(word)
        return ok

    def phrase_ok(self, phrase: str) -> bool:
        return all(self.word_ok(w) for w in phrase.split())

    def _judge(self, word: str) -> bool:
        count = self.doc_counts.get(word, 0)
        known = self.vocabulary is None or word in self.vocabulary or "'" in word or "-" in word
        if not known and count < self.min_unknown_docs:
            return False
        if len(word) < 3:
            return True
        # A known word is only doubted for the commonest slips (a doubled or dropped letter, two letters
        # swapped: "wil", "willl", "teh"), so "car" is not taken for a misspelt "card".
        neighbours = _edits1(word) if not known else _slips(word)
        return not any(
            self.doc_counts.get(other, 0) >= self.ratio * max(count, 1)
            for other in neighbours - _inflections(word)
        )


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _edits1(word: str) -> set[str]:
    """Words one edit from ``word`` (Norvig's spelling corrector): deletes, swaps, replaces, inserts."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return (deletes | swaps | replaces | inserts) - {word}


def _slips(word: str) -> set[str]:
    """``word`` with one letter doubled, one doubled letter single, or two neighbours swapped."""
    out = set()
    for i in range(len(word)):
        out.add(word[: i + 1] + word[i:])  # doubled
        if i + 1 < len(word):
            if word[i] == word[i + 1]:
                out.add(word[:i] + word[i + 1 :])  # undoubled
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # swapped
    return out - {word}


def _inflections(word: str) -> set[str]:
    """Regular inflections of ``word`` and what it may inflect: a plural is not a misspelt singular."""
    out = {word + end for end in ("s", "es", "d", "ed", "r", "er")}
    for end in ("s", "es", "d", "ed", "r", "er"):
        if word.endswith(end):
            out.add(word[: -len(end)])
    return out


@functools.lru_cache(maxsize=4)
def model_vocabulary(model_name: str = "all-MiniLM-L6-v2") -> frozenset[str] | None:
    """The whole-word entries of a sentence-transformers model's WordPiece vocabulary (``vocab.txt``), or
    ``None`` when the model has none on disk."""
    from pathlib import Path

    from turret.embed import resolve_model_path

    path = Path(resolve_model_path(model_name)) / "vocab.txt"
    if not path.is_file():
        return None
    words = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w and not w.startswith("##") and not w.startswith("["))
