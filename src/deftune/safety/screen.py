"""Content screens for prompts, generated text and training data, each verdict naming the rules that fired:

- an offensive-language classifier (PyPI alt-profanity-check: a linear SVM on TF-IDF shipped in the package);
- a blocklist of terms and phrases by category, matched after normalisation against trivial evasion: case,
  accents and look-alike letters, zero-width characters, leetspeak (``sh1t``, ``@ss``), letters spaced out or
  separated (``f u c k``, ``f.u.c.k``), repeated letters (``fuuuck``) and masked letters (``f**k``);
- personal data (deftune.safety.pii), redacted;
- optionally a guard model from a local folder (Llama Guard style: it answers ``safe`` or ``unsafe`` + codes).
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from ..config import SafetyConfig
from ..core.files import check_path, jsonl_rows, text_lines
from ..errors import DataError, ModelError
from . import pii

BLOCKLIST: dict[str, list[str]] = {
    "profanity": [
        "*fuck*",
        "*shit",
        "shit*",
        "bitch*",
        "bastard*",
        "asshole*",
        "arsehole*",
        "ass",
        "asses",
        "cunt*",
        "twat*",
        "wank*",
        "piss",
        "pissed",
        "pissing",
        "goddamn*",
        "motherf*",
        "cocksuck*",
        "douche*",
        "jackass*",
        "dumbass*",
        "bollocks",
        "dickhead*",
        "dickhole*",
        "bullshit*",
        "crap",
    ],
    "slur": [
        "nigger*",
        "nigga*",
        "niggas",
        "faggot*",
        "fag",
        "fags",
        "retard",
        "retards",
        "retarded",
        "kike*",
        "spic",
        "spics",
        "tranny",
        "trannies",
        "dyke",
        "dykes",
        "wetback*",
        "gook*",
        "raghead*",
        "towelhead*",
        "batty boy*",
        "sissy",
    ],
    "sexual": [
        "porn*",
        "blowjob*",
        "blow job*",
        "handjob*",
        "cum",
        "cumming",
        "cums",
        "cumshot*",
        "jizz*",
        "dildo*",
        "masturbat*",
        "orgasm*",
        "pussy",
        "pussies",
        "tits",
        "titties",
        "boobs",
        "horny",
        "milf*",
        "clit",
        "clits",
        "clitoris",
        "sex toy*",
        "slut*",
        "whore*",
        "hooker*",
        "testicles",
        "cock",
        "cocks",
    ],
    "insult": ["idiot*", "moron*", "stupid", "dumb", "imbecile*", "scumbag*", "loser*", "piece of shit", "shut up"],
    "threat": [
        "kill you",
        "kill them",
        "kill all",
        "i will kill",
        "going to kill",
        "gonna kill",
        "rape you",
        "i will rape",
        "shoot you",
        "murder you",
        "hang you",
        "stab you",
        "slit your throat",
        "kill yourself",
        "you should die",
        "bomb every",
        "put my hands on",
    ],
}

LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
        "+": "t",
        "€": "e",
    }
)
LOOKALIKE = str.maketrans("аеорсхуіјѕԁԛ", "aeopcxyijsdq")  # Cyrillic letters that render like Latin ones
INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060\ufeff]")
MASKS = "*#"
EDGE = "\"'“”‘’.,;:?!()[]{}<>«»…-_/\\~^`"
REPEATS = re.compile(r"(.)\1+")


def _fold(text: str) -> str:
    """Lower case, look-alike letters mapped, accents and invisible characters removed."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).lower().translate(LOOKALIKE)
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def normalise(text: str) -> list[str]:
    """Word tokens after normalisation: folded, split at spaces, hyphens, slashes and dots between letters,
    leetspeak decoded inside tokens that hold a letter, and runs of three or more single characters
    (``f u c k``, ``f.u.c.k``) joined into one token. Mask characters (``*``, ``#``) are kept."""
    words = []
    for chunk in re.split(r"[\s/]+|(?<=[a-z])[-._](?=[a-z0-9@$*#])", _fold(text)):
        word = chunk.strip(EDGE)
        if any(ch.isalpha() for ch in word):
            word = word.translate(LEET).strip(EDGE)
        if word:
            words.append(word)
    joined, run = [], []
    for word in words + [""]:
        if len(word) == 1:
            run.append(word)
            continue
        joined += ["".join(run)] if len(run) >= 3 else run
        run = []
        if word:
            joined.append(word)
    return joined


def _forms(word: str) -> set[str]:
    """A word and, when it repeats letters, its forms with every run of repeats cut to one or two letters."""
    if not REPEATS.search(word):
        return {word}
    return {word, REPEATS.sub(r"\1", word), REPEATS.sub(r"\1\1", word)}


def _masked_match(word: str, term: str) -> bool:
    """Whether a masked word (``f**k``, ``c**ksuckers``) spells the term from its start: the same letters where
    not masked, one letter per mask; a term ending in ``*`` also matches longer words."""
    root = term.strip("*")
    visible = sum(ch not in MASKS for ch in word[: len(root)])
    if visible < 1 or len(word) < len(root) or (len(word) > len(root) and not term.endswith("*")):
        return False
    return all(w == r or w in MASKS for w, r in zip(word, root))


@dataclass
class Blocklist:
    """Terms by category; a term is a word (``fnmatch`` wildcards allowed, e.g. ``fuck*``) or a phrase of
    several words matched on the normalised word sequence (repeated letters cut to one on both sides)."""

    terms: dict[str, list[str]]

    @cached_property
    def _words(self) -> list[tuple[str, str]]:
        return [(c, t.lower()) for c, ts in self.terms.items() for t in ts if " " not in t.strip()]

    @cached_property
    def _phrases(self) -> list[tuple[str, str, re.Pattern]]:
        def pattern(phrase: str) -> re.Pattern:  # a trailing * on a word matches any ending
            words = [re.escape(REPEATS.sub(r"\1", w)).replace(r"\*", r"\S*") for w in normalise(phrase)]
            return re.compile(r"(?<!\S)" + " ".join(words) + r"(?!\S)")

        return [(c, t, pattern(t)) for c, ts in self.terms.items() for t in ts if " " in t.strip()]

    def matches(self, text: str) -> list[dict]:
        """One dict per blocklist hit: category, term and the word (or phrase) as found after normalisation."""
        words = normalise(text)
        hits = []
        for word in dict.fromkeys(words):
            masked = any(ch in MASKS for ch in word)
            for category, term in self._words:
                if (masked and _masked_match(word, term)) or any(fnmatch.fnmatchcase(f, term) for f in _forms(word)):
                    hits.append({"rule": "blocklist", "category": category, "term": term, "found": word})
                    break
        sequence = REPEATS.sub(r"\1", " ".join(words))  # phrases are compared with repeated letters cut to one
        for category, term, pattern in self._phrases:
            if pattern.search(sequence):
                hits.append({"rule": "blocklist", "category": category, "term": term, "found": term})
        return hits


def blocklist(overrides: dict[str, list[str]] | None) -> Blocklist:
    """The built-in blocklist with the categories named in `overrides` replaced (an empty list removes one)."""
    return Blocklist({c: t for c, t in {**BLOCKLIST, **(overrides or {})}.items() if t})


@dataclass
class Verdict:
    flagged: bool
    categories: list[str]
    rules: list[dict]
    redacted: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        """Whether a content rule fired (personal data alone is redacted, not blocked)."""
        return any(c != "pii" for c in self.categories)

    def to_json(self) -> dict:
        return asdict(self) | {"blocked": self.blocked}


class GuardModel:
    """A safety classifier given as a local causal-LM folder that answers ``safe`` or ``unsafe`` (then category
    codes such as ``S1``) to the conversation rendered by its chat template, as Llama Guard does."""

    def __init__(self, path: str, max_new_tokens: int = 10):
        from ..core import (
            models,  # the model stack loads only when a guard model is configured
        )

        if not (Path(path) / "config.json").is_file():
            raise ModelError(
                f"{path}: guard model must be a local Hugging Face model folder", field="safety.guard_model"
            )
        self.model, self.tokenizer = models.load(path)
        self.max_new_tokens = max_new_tokens

    def prompt(self, text: str) -> str:
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )

    def __call__(self, texts: list[str]) -> list[list[str] | None]:
        """Per text: None when judged safe, else the unsafe categories it named (["unsafe"] if none)."""
        from ..core.inference import DecodingSettings, generate

        answers = generate(
            self.model,
            self.tokenizer,
            [self.prompt(t) for t in texts],
            DecodingSettings(max_new_tokens=self.max_new_tokens),
        )
        return [parse_guard(a) for a in answers]


def parse_guard(answer: str) -> list[str] | None:
    """Llama Guard's answer: ``safe``, or ``unsafe`` followed by comma-separated category codes."""
    lines = answer.strip().lower().split("\n")
    if not lines[0].strip().startswith("unsafe"):
        return None
    codes = [c.strip().upper() for line in lines[1:] for c in line.split(",") if c.strip()]
    return codes or ["unsafe"]


class Screen:
    """All configured screens over a batch of texts; `__call__` returns one Verdict per text."""

    def __init__(self, cfg: SafetyConfig = SafetyConfig()):
        self.cfg = cfg
        self.blocklist = blocklist(cfg.blocklist)
        self.guard = GuardModel(cfg.guard_model) if cfg.guard_model else None

    def classifier_scores(self, texts: list[str]) -> list[float]:
        from profanity_check import predict_prob

        return [float(p) for p in predict_prob(texts)] if texts else []

    def __call__(self, texts: list[str]) -> list[Verdict]:
        scores = self.classifier_scores(texts) if self.cfg.classifier else [None] * len(texts)
        guarded = self.guard(texts) if self.guard else [None] * len(texts)
        return [self._verdict(t, s, g) for t, s, g in zip(texts, scores, guarded)]

    def one(self, text: str) -> Verdict:
        return self([text])[0]

    def _verdict(self, text: str, score: float | None, guard: list[str] | None) -> Verdict:
        rules = []
        if score is not None and score >= self.cfg.classifier_threshold:
            rules.append({"rule": "classifier", "category": "offensive", "score": round(score, 4)})
        rules += self.blocklist.matches(text)
        if guard:
            rules.append({"rule": "guard_model", "category": "guard", "codes": guard})
        found = pii.find(text, self.cfg.pii)
        rules += [{"rule": f"pii:{m.kind}", "category": "pii", "span": [m.start, m.end]} for m in found]
        categories = list(dict.fromkeys(r["category"] for r in rules))
        return Verdict(
            bool(rules),
            categories,
            rules,
            pii.redact(text, found),
            {"classifier": round(score, 4)} if score is not None else {},
        )


def read_texts(path: str | Path) -> list[tuple[str, str]]:
    """(id, text) items of a file to screen: JSONL records with a ``text`` field (``id`` optional; ``.jsonl`` or
    ``.json``), otherwise plain text with one item per non-empty line. Ids default to the line number."""
    path = Path(path)
    check_path(path)
    if path.suffix.lower() not in (".jsonl", ".json"):
        return [(str(n), line.rstrip("\r\n")) for n, line in text_lines(path, "text") if line.strip()]
    items = []
    for line, row in jsonl_rows(path):
        if not isinstance(row, dict):
            raise DataError(
                f"expected a JSON object with a 'text' field, got {type(row).__name__}", file=str(path), line=line
            )
        if not isinstance(row.get("text"), str):
            raise DataError("expected a string field 'text'", file=str(path), line=line, field="text")
        items.append((str(row.get("id", line)), row["text"]))
    return items
