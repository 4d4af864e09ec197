"""Small helpers shared by tests."""

import json
import shutil
import subprocess

import pytest

TOPICS = {
    "sport": [
        "The team won the match in extra time",
        "A late goal settled the cup final",
        "The striker signed for a rival club",
        "Fans cheered as the runner broke the record",
    ],
    "tech": [
        "The new phone ships with a faster chip",
        "Engineers released a patch for the browser",
        "The startup built a cheaper battery",
        "Researchers trained a larger language model",
    ],
}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def classification_file(path, copies: int = 2):
    """A small two-topic classification set (each sentence `copies` times with distinct ids)."""
    rows = [
        {"id": f"{label}-{i}-{c}", "text": text, "label": label}
        for label, texts in TOPICS.items()
        for i, text in enumerate(texts)
        for c in range(copies)
    ]
    return write_jsonl(path, rows)


def _apertium_pair() -> bool:
    if shutil.which("apertium") is None:
        return False
    modes = subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False).stdout.split()
    return {"eng-spa", "spa-eng"} <= set(modes)


needs_apertium = pytest.mark.skipif(
    not _apertium_pair(), reason="Apertium EN<->ES is not installed (make test installs it where it can)"
)
