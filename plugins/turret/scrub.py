"""PII scrubbing: replace personal data in free text with typed placeholders before it is stored or embedded.

``scrub(text)`` replaces e-mail addresses with ``[EMAIL]``, IBANs with ``[IBAN]``, payment card numbers with
``[CARD]``, US social security numbers with ``[SSN]``, IP addresses (v4 and v6) with ``[IP]``, phone
numbers with ``[PHONE]``, API keys of well-known formats (OpenAI-style ``sk-...``, Stripe ``sk_live_...``,
AWS access key ids ``AKIA...``, GitHub tokens ``ghp_...``) with ``[API_KEY]``, and bearer tokens and JWTs
with ``[TOKEN]``. Text without any of these comes back byte for byte.

Every pattern is paired with a check where one exists (Luhn for cards, mod-97 for IBANs, the SSA's invalid
ranges for SSNs, ``ipaddress`` for IPs) so that ordinary numbers -- order ids, prices, dates, times -- are not
mangled. Where a string is ambiguous and no check helps (a dotted quad such as ``1.2.3.4`` that is also a
plausible version number) we scrub it unless it is written as a version (``v1.2.3.4``, ``version 1.2.3.4``):
over-scrubbing a version costs a little topic quality, under-scrubbing an address leaks data.
The choices are documented in docs/topics.md ("Privacy").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
SSN = "[SSN]"
IP = "[IP]"
IBAN = "[IBAN]"
API_KEY = "[API_KEY]"
TOKEN = "[TOKEN]"

# Secrets by their published prefixes; each needs a long run of key characters and (except AWS ids, whose
# shape is exact) a digit, so words such as "sk-learn" or "sk-this-is-a-long-compound" are left alone.
_KEY_CHARS = r"[A-Za-z0-9_-]"
_API_KEY_RE = re.compile(
    r"(?<![\w-])(?:"
    rf"sk-(?=[A-Za-z0-9_-]*\d){_KEY_CHARS}{{20,}}"  # OpenAI sk-..., sk-proj-..., Anthropic sk-ant-...
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret and restricted keys
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key ids (long-lived and temporary)
    r"|gh[pousr]_[A-Za-z0-9]{36,}"  # GitHub personal, OAuth, user-to-server, server and refresh tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"  # GitHub fine-grained personal access tokens
    r")(?![\w-])"
)
# "Bearer <token>" (an Authorization header pasted into a prompt): the token goes, the word stays. A token
# is 16+ token68 characters with a digit, so "bearer of bad news" or "bearer bonds" are not touched.
_BEARER_RE = re.compile(r"(?<![\w-])(?P<word>[Bb]earer|BEARER)(?P<sep>:?\s+)(?=[A-Za-z0-9\-._~+/]*\d)"
                        r"[A-Za-z0-9\-._~+/]{16,}=*(?![\w\-.~+/=])")
# A JSON Web Token: three base64url parts, the first two JSON objects ("eyJ" is base64 for '{"').
_JWT_RE = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?![\w-])")

_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
# Two-letter country code, two check digits, then 11-30 alphanumerics, optionally grouped by fours.
_IBAN_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
# The whole run of 13+ digits with single spaces or dashes between them; _card finds a 13-19 digit,
# Luhn-valid card in it (alone, or as whole digit groups inside a longer run).
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,}")
_SSN_RE = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d]|-\d)")
# Candidate IPv6: hex groups and colons (and a trailing dotted quad for mapped addresses), validated later.
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE = re.compile(
    rf"(?<![\w.])(?P<version>(?:[vV]|[vV]ersion\s+))?{_OCTET}(?:\.{_OCTET}){{3}}(?:/\d{{1,2}})?(?![\w]|\.\d)"
)
# Phones: an optional +country code (or NANP's leading 1), then groups split by separators (2-4, 3-4, 3-4
# digits), or a compact E.164 number; a digit group right before or after means it is part of something
# longer. A bare run of digits without + or separators is not taken: it is more often an order or account
# number than a phone, and cards are handled above.
_PHONE_RE = re.compile(
    r"(?<![\w+.\-/])(?<!\d[ .\-])"
    r"(?:"
    r"(?:\+\d{1,3}[ .-]?|1[ .-])?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}"
    r"|\+\d{7,15}"
    r")"
    r"(?![\w]|[ .\-/]?\d)"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD_SHAPES = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1)}


def _is_card(raw: str) -> bool:
    digits = re.sub(r"[ -]", "", raw)
    # Mixed separators ("1234-5678 9012") and all-same digits are not how cards are written.
    if " " in raw and "-" in raw:
        return False
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits)


def _card(match: re.Match[str]) -> str:
    raw = match.group(0)
    if _is_card(raw):
        return CARD
    # The run may glue a card to a neighbouring number ("page 2 4111 1111 1111 1111"): try the runs of
    # whole digit groups inside it, longest first, and scrub the first that is a card.
    # Only card-shaped windows (4-4-4-4, 4-6-5, ...) count, or each window is one more 10% Luhn lottery.
    parts = re.split(r"([ -])", raw)  # digit groups at even indexes, separators at odd ones
    groups = len(parts) // 2 + 1
    spans = sorted(
        ((i, j) for i in range(groups) for j in range(i + 1, groups + 1) if (i, j) != (0, groups)),
        key=lambda ij: ij[0] - ij[1],
    )
    for i, j in spans:
        shape = tuple(len(parts[2 * k]) for k in range(i, j))
        if shape not in _CARD_SHAPES and not (len(shape) == 1 and 13 <= shape[0] <= 19):
            continue
        inner = "".join(parts[2 * i : 2 * j - 1])
        if _is_card(inner):
            return "".join(parts[: 2 * i]) + CARD + "".join(parts[2 * j - 1 :])
    return raw


def _ssn(match: re.Match[str]) -> str:
    area, group, serial = match.group(1), match.group(2), match.group(3)
    # Numbers the SSA never issues: area 000, 666 or 9xx; group 00; serial 0000.
    if area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000":
        return match.group(0)
    return SSN


def _iban(match: re.Match[str]) -> str:
    raw = match.group(0)
    compact = raw.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return raw
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return IBAN if int(numeric) % 97 == 1 else raw


def _ipv6(match: re.Match[str]) -> str:
    raw = match.group(0)
    if raw.count(":") < 2 or raw.strip(":") == "":
        return raw
    try:
        ipaddress.IPv6Address(raw)
    except ValueError:
        return raw
    # "a::b" (C++ scopes) is valid IPv6 too: ask for a digit and three hex digits, as real addresses have.
    hex_digits = sum(ch in "0123456789abcdefABCDEF" for ch in raw)
    if not any(ch.isdigit() for ch in raw) or hex_digits < 3:
        return raw
    return IP


def _ipv4(match: re.Match[str]) -> str:
    if match.group("version"):
        return match.group(0)
    return IP


def _phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = sum(ch.isdigit() for ch in raw)
    if digits < 7 or digits > 15:
        return raw
    return PHONE


# Order matters: secrets first (their digit runs would otherwise be read as cards or phones, leaving the rest
# of the key), then e-mails (they may contain digits), IBAN and cards before phones (long digit runs),
# IPs before phones (dotted groups look like phone separators).
_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_JWT_RE, lambda m: TOKEN),
    (_BEARER_RE, lambda m: m.group("word") + m.group("sep") + TOKEN),
    (_API_KEY_RE, lambda m: API_KEY),
    (_EMAIL_RE, lambda m: EMAIL),
    (_IBAN_RE, _iban),
    (_CARD_RE, _card),
    (_SSN_RE, _ssn),
    (_IPV6_RE, _ipv6),
    (_IPV4_RE, _ipv4),
    (_PHONE_RE, _phone),
)

# Cheap pre-check: every rule needs a digit, or an "@" (e-mails), or a ":" (IPv6 like "fe80::"), or a secret's
# prefix (an AWS key id or a JWT may happen to have no digit).
_MAYBE_PII = re.compile(r"[\d@:]|AKIA|ASIA|eyJ|[sr]k_|gh[pousr]_|github_pat_")


def scrub(text: str) -> str:
    """Return ``text`` with PII replaced by typed placeholders; text without PII is returned unchanged."""
    if not isinstance(text, str):
        raise TypeError(f"scrub() expects str, got {type(text).__name__}")
    if not _MAYBE_PII.search(text):
        return text
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text
