"""turret.language: the language of a text, offline, with 'und' for texts too short to tell."""

from __future__ import annotations

import pytest
from turret.language import UNDETERMINED, detect, is_other_language


@pytest.mark.parametrize("text, code", [
    ("How do I reset my password on the mobile app?", "en"),
    ("hola, quiero cambiar la contraseña de mi cuenta", "es"),
    ("Wie kann ich mein Passwort ändern?", "de"),
    ("je voudrais annuler ma commande d'hier", "fr"),
    ("我的密码忘了怎么办", "zh"),
    ("ok", UNDETERMINED),
    ("thanks!", UNDETERMINED),
    ("yes please", UNDETERMINED),
])
def test_detect(text, code):
    assert detect(text) == code


def test_other_language_means_confidently_not_english():
    assert [is_other_language(c) for c in ("en", UNDETERMINED, None, "de")] == [False, False, False, True]
