"""PII scrubbing: each kind is replaced, near-misses and ordinary text are left byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from turret.scrub import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at john.doe+tag@example.co.uk please", "mail me at [EMAIL] please"),
        ("Contact: ANNA_B@Mail-Server.io.", "Contact: [EMAIL]."),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 378282246310005 here", "amex [CARD] here"),
        ("pay with 6011111111111117", "pay with [CARD]"),
        ("ssn 123-45-6789 is mine", "ssn [SSN] is mine"),
        ("call (555) 123-4567", "call [PHONE]"),
        ("call 555-123-4567 now", "call [PHONE] now"),
        ("ring +44 20 7946 0958", "ring [PHONE]"),
        ("whatsapp +14155552671", "whatsapp [PHONE]"),
        ("tel 555.123.4567", "tel [PHONE]"),
        ("Call 1-800-555-0199 today", "Call [PHONE] today"),
        ("server 192.168.1.20 is down", "server [IP] is down"),
        ("subnet 10.0.0.0/24", "subnet [IP]"),
        ("v6 2001:db8:85a3::8a2e:370:7334 fails", "v6 [IP] fails"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [IP]"),
        ("link-local fe80::1.", "link-local [IP]."),
        ("mapped ::ffff:10.0.0.1", "mapped [IP]"),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", "IBAN [IBAN] thanks"),
        ("to GB82WEST12345698765432", "to [IBAN]"),
        ("to GB82 WEST 1234 5698 7654 32.", "to [IBAN]."),
        ("page 2 4111 1111 1111 1111 of 3", "page 2 [CARD] of 3"),
        (
            "I'm bob@x.org, 555-123-4567, card 4111111111111111, ip 8.8.8.8",
            "I'm [EMAIL], [PHONE], card [CARD], ip [IP]",
        ),
        # A bare dotted quad is scrubbed even if it might be a version: leaking an address costs more.
        ("upgrade to 1.2.3.4", "upgrade to [IP]"),
        # Secrets: API keys by their published prefixes, bearer tokens, JWTs.
        ("my key sk-proj-abc123DEF456ghi789JKL012mno fails", "my key [API_KEY] fails"),
        ("OPENAI_API_KEY=sk-1234567890abcdefghijklmnopqrstuvwxyzABCD", "OPENAI_API_KEY=[API_KEY]"),
        ("claude key sk-ant-api03-AbCdEf1234567890abcdefGHIJ.", "claude key [API_KEY]."),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc and rk_test_abcdefghijklmnopqrst",
         "stripe [API_KEY] and [API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE / ASIAZZZZZZZZZZZZZZZZ", "aws [API_KEY] / [API_KEY]"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789AB leaked", "token [API_KEY] leaked"),
        ("github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
         "[API_KEY]"),
        ("Authorization: Bearer abcDEF123456ghiJKL789.xyz", "Authorization: Bearer [TOKEN]"),
        ("curl -H 'authorization: bearer 0a1b2c3d4e5f6a7b8c9d0e1f'",
         "curl -H 'authorization: bearer [TOKEN]'"),
        (
            "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
            "dozjgNryP4J3jVmNHl0w5N_XgL0 ok",
            "jwt [TOKEN] ok",
        ),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.sig", "Bearer [TOKEN]"),
        # A key whose digits would pass as a card is still one key.
        ("sk-abcd4111111111111111wxyz0123", "[API_KEY]"),
    ],
)
def test_pii_is_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "How do I reset my password?",
        "card 4111 1111 1111 1112 fails Luhn",  # Luhn check fails: not a card
        "ssn 666-45-6789 and 000-12-3456 never issued",
        "ssn 123-00-4567 group 00 never issued",
        "version 1.2.3.4 and v1.2.3.4 are versions",
        "release 1.2.3 and 10.0.0.1.5 and 256.1.1.1",
        "at 12:30:45 on 2024-01-15, order 12345678, price $1,299.99",
        "std::vector<int> and a::b in C++, ratio 16:9, score 1:2:3",
        "room 101, zip 02139, years 2023-2024, ISBN 978-3-16-148410-0",
        "account 1234567890 (not a phone without separators)",
        "IBAN-like GB82 WEST 1234 5698 7654 33 with a bad checksum",
        "user@localhost has no domain",
        "use sk-learn or sk-this-is-a-very-long-hyphenated-word, AKIA alone, sk_live_short",
        "the bearer of bad news, bearer bonds from 2024, Bearer token missing",
        "eyJ is not a token, nor is ghp_short",
        "😀 unicode — “quotes” and tabs\tand\nnewlines stay as they are",
        "",
    ],
)
def test_text_without_pii_is_unchanged(text):
    assert scrub(text) == text


def test_rejects_non_string():
    with pytest.raises(TypeError, match="expects str"):
        scrub(None)  # type: ignore[arg-type]


_words = st.sampled_from(
    ["reset", "my", "password", "please", "help", "the", "card", "order", "1.2", "2024", "v3", "x:y", "42%"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_words, max_size=12),
    st.sampled_from(["a.b@example.com", "4111 1111 1111 1111", "8.8.4.4", "sk-proj-abc123DEF456ghi789JKL012",
                     "AKIAIOSFODNN7EXAMPLE"]),
)
def test_pii_never_survives_and_scrub_is_idempotent(words, secret):
    text = " ".join([*words, secret, *reversed(words)])
    out = scrub(text)
    assert secret not in out
    assert scrub(out) == out
