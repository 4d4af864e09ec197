import pytest

from deftune.safety import pii
from deftune.safety.filters import evaluate_pii, generated_pii


@pytest.mark.parametrize(
    "number, valid",
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
        ("378282246310005", True),
        ("6011111111111117", True),
    ],
)
def test_luhn_against_known_numbers(number, valid):
    assert pii.luhn_valid(number) is valid


@pytest.mark.parametrize(
    "iban, valid",
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("GB82 WEST 1234 5698 7654 33", False),
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("FR1420041010050500013M02606", True),
    ],
)
def test_iban_mod97_against_published_examples(iban, valid):
    assert pii.iban_valid(iban) is valid


@pytest.mark.parametrize(
    "text, kind, found",
    [
        ("write to jane.doe+news@mail.example.co.uk today", "email", "jane.doe+news@mail.example.co.uk"),
        ("call (555) 123-4567 now", "phone", "(555) 123-4567"),
        ("call +44 20 7946 0958 now", "phone", "+44 20 7946 0958"),
        ("mobile 07700 900123.", "phone", "07700 900123"),
        ("card 4111 1111 1111 1111 please", "card", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111 please", "card", "4111-1111-1111-1111"),
        ("pay GB82 WEST 1234 5698 7654 32 now", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("pay DE89370400440532013000.", "iban", "DE89370400440532013000"),
        ("host 192.168.0.1 is down", "ip", "192.168.0.1"),
        ("host 2001:db8::8a2e:370:7334 is down", "ip", "2001:db8::8a2e:370:7334"),
    ],
)
def test_each_kind_is_found_and_redacted(text, kind, found):
    matches = pii.find(text)
    assert [(m.kind, m.text) for m in matches] == [(kind, found)]
    assert pii.redact(text, matches) == text.replace(found, f"[{kind.upper()}]")


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails the Luhn check",
        "GB82 WEST 1234 5698 7654 33 fails mod 97",
        "version 1.2.3.4.5 and 999.1.1.1 are not addresses",
        "the 2004-2005 season",
        "population 1234567",
        "scores of 3-1 and 10:30 kick-off",
        "Account NL97 5352 1818 8355 23 does not exist.",  # bad IBAN whose digits hold a Luhn-valid run
        "Card 5162-0450-5331-5860 was typed wrongly.",
    ],
)  # bad card whose tail looks like a phone number
def test_lookalikes_that_fail_their_check_are_kept(text):
    assert pii.find(text) == []


def test_only_configured_kinds_are_found():
    text = "a@b.com from 10.0.0.1"
    assert [m.kind for m in pii.find(text, ["ip"])] == ["ip"]


def test_generated_set_values_are_valid_and_redaction_rate_counts_misses():
    items = generated_pii(20, seed=3)
    assert {k for k, _, _ in items} == set(pii.KINDS) and len(items) == 20 * len(pii.KINDS)
    assert all(pii.luhn_valid(v.replace(" ", "").replace("-", "")) for k, v, _ in items if k == "card")
    assert all(pii.iban_valid(v) for k, v, _ in items if k == "iban")
    report = evaluate_pii(20, seed=3, kinds=["email", "ip"])  # phones/cards/IBANs left in: rate still per kind
    assert set(report["by_kind"]) == {"email", "ip"} and report["n"] == 40
    assert report["decoys"] == 80 and report["decoy_redaction_rate"] == len(report["decoys_redacted"]) / 80
