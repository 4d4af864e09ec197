"""Canonical records and the loaders that produce them from JSONL, CSV, Parquet and saved Hugging Face datasets.

One record type covers four formats:
- ``chat``: ``messages``, a list of ``{"role": system|user|assistant, "content": str}``;
- ``completion``: ``prompt`` + ``completion``;
- ``text``: plain ``text`` for language modelling;
- ``classification``: ``text`` + ``label`` (rendered as an instruction whose answer is the label).
Optional fields on every record: ``id``, ``meta`` (slice fields such as topic), ``annotations`` (several
annotators' labels), ``group`` (protected attributes). Any problem is reported as file:line:field.
Text files are read in binary, one bounded line at a time, so a hostile file (not UTF-8, one endless line)
gives an error naming its line instead of a traceback or an exhausted memory.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.files import check_path, csv_rows, jsonl_rows, parse_json
from ..errors import DataError

log = logging.getLogger(__name__)

FORMATS = ("chat", "completion", "text", "classification")
ROLES = ("system", "user", "assistant")
OPTIONAL = ("id", "meta", "annotations", "group")
REQUIRED = {
    "chat": ("messages",),
    "completion": ("prompt", "completion"),
    "text": ("text",),
    "classification": ("text", "label"),
}
STRUCTURED = ("messages", "meta", "annotations", "group")  # JSON-encoded when they come from a CSV cell


@dataclass
class Record:
    id: str
    format: str
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    completion: str | None = None
    text: str | None = None
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    annotations: list[str | None] | None = None
    group: dict[str, str] | None = None
    source: str = ""  # file:line the record came from


@dataclass
class Dataset:
    records: list[Record]
    format: str
    source: str

    @property
    def labels(self) -> list[str]:
        """The sorted set of labels seen (classification only)."""
        return sorted({r.label for r in self.records if r.label is not None})

    def __len__(self) -> int:
        return len(self.records)


def to_row(record: Record) -> dict:
    """A record in the input schema (what `deftune.data.load` reads back)."""
    out = {name: getattr(record, name) for name in ("id", *REQUIRED[record.format])}
    out.update({name: getattr(record, name) for name in OPTIONAL if name != "id" and getattr(record, name)})
    return out


def detect_format(row: dict) -> str | None:
    if "messages" in row:
        return "chat"
    if "prompt" in row or "completion" in row:
        return "completion"
    if "label" in row:
        return "classification"
    if "text" in row:
        return "text"
    return None


def _blank(value: Any) -> bool:
    """What counts as no value: null, an empty CSV cell, NaN (how pandas and Parquet float columns say missing,
    and a literal Python's json accepts), or a string of only whitespace."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _string(value: Any, err) -> str:
    if not isinstance(value, str):
        raise err(f"expected a string, got {type(value).__name__}")
    return value


def _messages(value: Any, err) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise err("expected a non-empty list of {role, content} messages")
    messages = []
    for i, message in enumerate(value):
        where = f"[{i}]"
        if not isinstance(message, dict):
            raise err(f"message {where}: expected an object with 'role' and 'content'")
        for key in ("role", "content"):
            if key not in message:
                raise err(f"message {where}: missing field '{key}'")
        if message["role"] not in ROLES:
            raise err(f"message {where}: unknown role {message['role']!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(message["content"], str):
            raise err(f"message {where}: content must be a string, got {type(message['content']).__name__}")
        messages.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise err("no assistant message with content: nothing to train on")
    return messages


def _label(value: Any, err) -> str:
    # Integers are accepted as class ids and kept as their string form; everything else must be a string.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise err(f"label must be a string (or an integer class id), got {type(value).__name__}")
    label = str(value)
    if not label.strip():
        raise err("label is empty")
    return label


def _annotations(value: Any, err) -> list[str | None]:
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        raise err("expected a list of labels, one per annotator (null where one did not label)")
    return [None if v is None else _label(v, err) for v in value]


def _group(value: Any, err) -> dict[str, str]:
    if isinstance(value, str):
        return {"group": value}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise err("expected a string or an object of attribute -> value strings")
    return {str(k): v for k, v in value.items()}


def parse_record(row: Any, fmt: str, *, file: str, line: int | str, auto_id: str) -> Record:
    """Validate one raw row against a format and return a Record (id `auto_id` when the row has none); raise
    DataError naming file:line:field."""

    def err_for(name: str):
        return lambda msg, name=name: DataError(msg, file=file, line=line, field=name)

    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object (one record per line), got {type(row).__name__}", file=file, line=line)
    for name in REQUIRED[fmt]:
        if name not in row:
            raise DataError(f"missing field '{name}' (required for {fmt} records)", file=file, line=line, field=name)
        if _blank(row[name]):
            raise err_for(name)(f"missing value in required field '{name}'")
    record = Record(id=auto_id if _blank(row.get("id")) else str(row["id"]), format=fmt, source=f"{file}:{line}")
    if fmt == "chat":
        record.messages = _messages(row["messages"], err_for("messages"))
    elif fmt == "completion":
        record.prompt = _string(row["prompt"], err_for("prompt"))
        record.completion = _string(row["completion"], err_for("completion"))
    else:
        record.text = _string(row["text"], err_for("text"))
        if fmt == "classification":
            record.label = _label(row["label"], err_for("label"))
    if not _blank(row.get("meta")):
        if not isinstance(row["meta"], dict):
            raise err_for("meta")('expected an object of slice fields, e.g. {"topic": "sport"}')
        record.meta = dict(row["meta"])
    if not _blank(row.get("annotations")):
        record.annotations = _annotations(row["annotations"], err_for("annotations"))
    if not _blank(row.get("group")):
        record.group = _group(row["group"], err_for("group"))
    return record


def _decode_cells(row: dict, file: str, line: int | str) -> dict:
    """Table formats (CSV, Parquet, HF datasets) may carry structured fields as JSON strings."""
    for name in STRUCTURED:
        if isinstance(row.get(name), str) and row[name]:
            row[name] = parse_json(
                row[name],
                "cell is not valid JSON",
                lambda msg, name=name: DataError(msg, file=file, line=line, field=name),
            )
    return row


def _table_rows(rows: Iterator[dict], path: Path) -> Iterator[tuple[str, Any]]:
    for i, row in enumerate(rows, start=1):
        yield f"row {i}", _decode_cells(dict(row), str(path), f"row {i}")


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError subclasses for unreadable files
        raise DataError(f"cannot read Parquet file ({exc})", file=str(path)) from None
    return _table_rows(iter(table.to_pylist()), path)


def _hf_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError/ValueError variants
        raise DataError(f"cannot read saved Hugging Face dataset ({exc})", file=str(path)) from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded and len(loaded) != 1:
            raise DataError(
                f"dataset has splits {sorted(loaded)}; point at one split's folder or add 'train'", file=str(path)
            )
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return _table_rows(iter(loaded), path)


def _rows(path: Path) -> Iterator[tuple[int | str, Any]]:
    if path.is_dir():
        return _hf_rows(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return jsonl_rows(path)
    if suffix in (".csv", ".tsv"):
        return ((line, _decode_cells(row, str(path), line)) for line, row in csv_rows(path))
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    raise DataError(
        "unknown data file type (expected .jsonl, .csv, .parquet or a saved Hugging Face dataset folder)",
        file=str(path),
    )


def load_file(path: str | Path, fmt: str = "auto", *, id_prefix: str = "") -> Dataset:
    """Load a data file into canonical records; the format is taken from the first record when 'auto'. A record
    without an id gets `id_prefix` + its index (a prefix keeps those of separate files apart)."""
    path = Path(path)
    check_path(path)
    file = str(path)
    records: list[Record] = []
    ignored: set[str] = set()
    first_seen: dict[str, int | str] = {}
    for index, (line, row) in enumerate(_rows(path)):
        if fmt == "auto":
            fmt = detect_format(row) if isinstance(row, dict) else None
            if fmt is None:
                raise DataError(
                    "cannot tell the record format: expected 'messages', 'prompt'+'completion', "
                    "'text'+'label' or 'text'",
                    file=file,
                    line=line,
                )
        record = parse_record(row, fmt, file=file, line=line, auto_id=f"{id_prefix}{index}")
        if record.id in first_seen:
            first = first_seen[record.id]
            where = f"line {first}" if isinstance(first, int) else first
            raise DataError(f"duplicate id {record.id!r} (first at {where})", file=file, line=line, field="id")
        first_seen[record.id] = line
        records.append(record)
        ignored.update(set(row) - set(REQUIRED[fmt]) - set(OPTIONAL))
    if not records:
        raise DataError("no records: the file is empty", file=file)
    if ignored:
        log.warning("%s: ignoring fields not used by %s records: %s", file, fmt, ", ".join(sorted(ignored)))
    return Dataset(records, fmt, file)


# ---- views of a record ------------------------------------------------------------------------------


def majority(annotations: list[str | None] | None) -> str | None:
    """The annotators' most frequent label, or None when there is none or a tie."""
    top = Counter(a for a in annotations or [] if a is not None).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def prompt_and_response(record: Record) -> tuple[str, str]:
    """What the model is given (user/system turns, the prompt, the classification text; empty for text) and what it
    learns to say (assistant turns, the completion, the label; the whole text for text)."""
    if record.format == "chat":
        said = [(m["role"] == "assistant", m["content"]) for m in record.messages]
        return "\n".join(c for a, c in said if not a), "\n".join(c for a, c in said if a)
    if record.format == "completion":
        return record.prompt, record.completion
    if record.format == "classification":
        return record.text, record.label
    return "", record.text


def content(record: Record) -> str:
    """The record's own words: prompt and response, or the text alone for classification."""
    prompt, response = prompt_and_response(record)
    return prompt if record.format == "classification" else "\n".join(t for t in (prompt, response) if t)
