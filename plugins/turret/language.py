"""The language of a text, offline: py3langid's model ships inside the package (no download).

The packaged embedding model (all-MiniLM-L6-v2) is English-only: texts in other languages land near each
other whatever they are about, so they would form topics by language. The topic engine therefore fits on
English (and undetermined) texts only; texts in other languages join an English topic when they are close
to one and otherwise wait as Unclustered. Each text's language is kept in ``pipeline.event_texts.language``
and shown as the enum field ``<field>_language`` (``marts.fct_event_enums``), so a project can count and
segment them. Short texts ("ok", "thanks") say too little: they are ``und`` (undetermined).
"""

from __future__ import annotations

import functools

UNDETERMINED = "und"
ENGLISH = "en"
# Languages assistants commonly receive; restricting the classifier to them avoids exotic guesses for
# short English texts ("ok" -> Serbian).
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar", "he", "hi", "ja",
             "ko", "zh", "sv", "da", "no", "fi", "cs", "ro", "hu", "el", "id", "vi", "th")
MIN_WORDS = 3  # fewer words than this: undetermined
MIN_PROBABILITY = 0.5  # the classifier's normalised probability needed to name a language


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def detect(text: str) -> str:
    """ISO 639-1 code of ``text``'s language, or ``und`` when it is too short or the model is unsure."""
    words = text.split()
    if len(words) < MIN_WORDS and not any(ord(c) > 0x2E7F for c in text):  # CJK has no spaces
        return UNDETERMINED
    code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else UNDETERMINED


def is_other_language(code: str | None) -> bool:
    """True for a text confidently in a language other than English (kept out of topic fits)."""
    return code not in (None, ENGLISH, UNDETERMINED)
