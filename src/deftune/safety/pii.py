"""Personal data in text: e-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs (mod-97
checked) and IP addresses (v4 and v6, parsed by `ipaddress`). Candidates are found by pattern and kept only when
their checksum or structure holds, then replaced by a placeholder such as ``[EMAIL]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

KINDS = ("email", "phone", "card", "iban", "ip")

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
CARD = re.compile(r"(?<![\w-])(?<!\d[ -])\d(?:[ -]?\d){12,18}(?![\w-])(?![ -]\d)")
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# International (+CC ...), North-American ((555) 123-4567, 555-123-4567) and trunk-prefixed national (020 7946
# 0958, (020) 7946 0958, 07700 900123) layouts; digits are counted afterwards (7-15, the E.164 maximum).
PHONE = re.compile(
    r"""(?<![\w+])(?<!\d[ .-])(?:
      \+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,5}
    | \(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}
    | \(0\d{2,4}\)[ -]?\d{3,4}[ -]?\d{3,4}
    | \d{3}[.-]\d{3}[.-]\d{4}
    | \d{3}\ \d{3}\ \d{4}
    | 0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}
    )(?![\w-])(?![ .]\d)""",
    re.X,
)  # not part of a longer digit sequence (a card number, an IBAN)


@dataclass(frozen=True)
class Match:
    kind: str
    start: int
    end: int
    text: str


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string: every second digit from the right doubled (minus 9 above 9)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35; the number mod 97 is 1."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


CHECKS = {
    "email": (EMAIL, lambda t: True),
    "card": (CARD, lambda t: 13 <= len(_digits(t)) <= 19 and luhn_valid(_digits(t))),
    "iban": (IBAN, iban_valid),
    "ip": (None, _is_ip),
    "phone": (PHONE, lambda t: 7 <= len(_digits(t)) <= 15),
}


def find(text: str, kinds: tuple[str, ...] | list[str] = KINDS) -> list[Match]:
    """Non-overlapping personal-data matches, in text order. Checked kinds win over phone numbers where they
    overlap (a card number also looks like a long phone number)."""
    found: list[Match] = []
    for kind in ("email", "card", "iban", "ip", "phone"):
        if kind not in kinds:
            continue
        pattern, valid = CHECKS[kind]
        candidates = [m for p in ((IPV4, IPV6) if kind == "ip" else (pattern,)) for m in p.finditer(text)]
        for m in candidates:
            if valid(m.group()) and not any(m.start() < f.end and f.start < m.end() for f in found):
                found.append(Match(kind, m.start(), m.end(), m.group()))
    return sorted(found, key=lambda m: m.start)


def redact(text: str, matches: list[Match]) -> str:
    """The text with each match replaced by its kind's placeholder, e.g. ``[EMAIL]``."""
    out, last = [], 0
    for m in matches:
        out += [text[last : m.start], f"[{m.kind.upper()}]"]
        last = m.end
    return "".join(out) + text[last:]
