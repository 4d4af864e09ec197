import pytest

from deftune.config import SafetyConfig
from deftune.errors import DataError
from deftune.safety.screen import Screen, blocklist, normalise, parse_guard, read_texts

BLOCK = blocklist(None)


def terms(text, lst=BLOCK):
    return [(h["category"], h["term"]) for h in lst.matches(text)]


@pytest.mark.parametrize(
    "text",
    [
        "shit",
        "SHIT",
        "Sh1t",
        "$hit",
        "sh!t",
        "s h i t",
        "s.h.i.t",
        "s-h-i-t",
        "shiiiiit",
        "s**t",
        "ѕhit",  # Cyrillic ѕ
        "sh\u200bit",
        "shít",
    ],
)
def test_evasions_of_a_blocked_word_are_caught(text):
    assert terms(text) == [("profanity", "*shit")] or terms(text) == [("profanity", "shit*")]


@pytest.mark.parametrize(
    "text, term",
    [
        ("motherf***er", "motherf*"),
        ("c**ksuckers", "cocksuck*"),
        ("f**king hell", "*fuck*"),
        ("what a dumbassss", "dumbass*"),
        ("you 4ss", "ass"),
        ("I will k1ll you", "kill you"),
        ("i will KILL   YOU", "kill you"),
        ("shut uuuup", "shut up"),
        ("cheap sex toys here", "sex toy*"),
        ("two blow-jobs", "blow job*"),
    ],
)
def test_masks_inflections_and_phrases(text, term):
    assert term in [t for _, t in terms(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United won",
        "I passed the class",
        "a glass of water",
        "assess the assets",
        "cocktail party",
        "the document is classified",
        "Sussex",
        "the 4th of July",
        "3 to 5 apples",
        "a.m. and p.m.",
        "f u n",
    ],
)
def test_innocent_words_are_not_caught(text):
    assert terms(text) == []


def test_normalise_joins_spaced_letters_but_not_short_runs():
    assert normalise("F u c k off") == ["fuck", "off"]
    assert normalise("a b testing") == ["a", "b", "testing"]
    assert normalise("Hello, W0rld!") == ["hello", "world"]


def test_blocklist_overrides_replace_and_remove_categories():
    custom = blocklist({"insult": ["nitwit*"], "profanity": []})
    assert terms("you nitwits", custom) == [("insult", "nitwit*")]
    assert terms("shit", custom) == []
    assert terms("porn", custom) == [("sexual", "porn*")]


def test_screen_verdict_names_rules_and_redacts():
    screen = Screen(SafetyConfig())
    clean, toxic, personal = screen(
        ["What is the capital of France?", "you stupid f*cking idiot", "mail bob@example.com, card 4111 1111 1111 1111"]
    )
    assert not clean.flagged and clean.rules == [] and clean.redacted == "What is the capital of France?"
    assert toxic.flagged and toxic.blocked
    assert {"classifier", "blocklist"} <= {r["rule"] for r in toxic.rules}
    assert {"offensive", "profanity", "insult"} <= set(toxic.categories)
    assert personal.flagged and not personal.blocked and personal.categories == ["pii"]
    assert personal.redacted == "mail [EMAIL], card [CARD]"
    assert [r["rule"] for r in personal.rules] == ["pii:email", "pii:card"]


def test_classifier_threshold_and_switch():
    text = "you are a horrible disgusting person"
    score = Screen(SafetyConfig(classifier=True)).classifier_scores([text])[0]
    low = Screen(SafetyConfig(classifier_threshold=max(score - 0.01, 0.01)))
    high = Screen(SafetyConfig(classifier_threshold=min(score + 0.01, 0.99)))
    assert "classifier" in [r["rule"] for r in low.one(text).rules]
    assert "classifier" not in [r["rule"] for r in high.one(text).rules]
    assert Screen(SafetyConfig(classifier=False)).one(text).scores == {}


@pytest.mark.parametrize(
    "answer, codes", [("safe", None), ("unsafe\nS1,S10", ["S1", "S10"]), ("Unsafe", ["unsafe"]), ("\nsafe\n", None)]
)
def test_guard_answers_are_parsed(answer, codes):
    assert parse_guard(answer) == codes


def test_guard_model_runs_from_a_local_folder(tiny_model):
    screen = Screen(SafetyConfig(guard_model=str(tiny_model), classifier=False))
    verdicts = screen(["hello", "how are you"])
    assert len(verdicts) == 2  # a random tiny model answers anything; the verdicts only carry its rule if so
    assert all(r["rule"] == "guard_model" for v in verdicts for r in v.rules)


def test_read_texts_jsonl_and_plain(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "one"}\n\n{"text": "two"}\n')
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    assert read_texts(tmp_path / "a.jsonl") == [("x", "one"), ("3", "two")]
    assert read_texts(tmp_path / "a.txt") == [("1", "one"), ("3", "two")]


@pytest.mark.parametrize(
    "content, where",
    [
        ('{"text": "ok"}\n{"txt": "no"}\n', ":2:text"),
        ('{"text": "ok"}\n{broken\n', ":2: malformed JSON"),
        ('["a list"]\n', ":1: expected a JSON object"),
    ],
)
def test_read_texts_errors_name_file_line_field(tmp_path, content, where):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as exc:
        read_texts(path)
    assert f"{path}{where}" in str(exc.value)
