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

import codecs
import csv
import errno
import json
import logging
import math
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError

log = logging.getLogger(__name__)

FORMATS = ("chat", "completion", "text", "classification")
ROLES = ("system", "user", "assistant")
OPTIONAL = ("id", "meta", "annotations", "group")
REQUIRED = {"chat": ("messages",), "completion": ("prompt", "completion"), "text": ("text",),
            "classification": ("text", "label")}
STRUCTURED = ("messages", "meta", "annotations", "group")  # JSON-encoded when they come from a CSV cell
MAX_LINE = 32 << 20  # bytes in one JSONL line or CSV field; anything larger is not one training example
HF_MARKERS = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes for a Dataset / a DatasetDict


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
    return (value is None or (isinstance(value, float) and math.isnan(value))
            or (isinstance(value, str) and not value.strip()))


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
        return lambda msg: DataError(msg, file=file, line=line, field=name)

    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object (one record per line), got {type(row).__name__}", file=file,
                        line=line)
    for name in REQUIRED[fmt]:
        if name not in row:
            raise DataError(f"missing field '{name}' (required for {fmt} records)", file=file, line=line,
                            field=name)
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
            raise err_for("meta")("expected an object of slice fields, e.g. {\"topic\": \"sport\"}")
        record.meta = dict(row["meta"])
    if not _blank(row.get("annotations")):
        record.annotations = _annotations(row["annotations"], err_for("annotations"))
    if not _blank(row.get("group")):
        record.group = _group(row["group"], err_for("group"))
    return record


def text_lines(path: Path, kind: str) -> Iterator[tuple[int, str]]:
    """(line number, text with its line ending) per line. Read in binary with a bounded readline, so one endless
    line cannot fill memory, and decoded line by line, so a bad byte is reported where it is; a UTF-8 BOM is
    dropped (Excel and Notepad write one)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", file=str(path)) from None
    offset, number = 0, 0
    with fh:
        while raw := fh.readline(MAX_LINE + 1):
            number += 1
            if len(raw) > MAX_LINE:
                raise DataError(f"the line is over {MAX_LINE >> 20} MiB (a single record that large is not a "
                                f"training example; is this a {kind} file?)", file=str(path), line=number)
            skip = len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[skip:].decode("utf-8")
            except UnicodeDecodeError as exc:
                at = skip + exc.start
                raise DataError(f"not valid UTF-8 (byte 0x{raw[at]:02x} at byte offset {offset + at} of the file); "
                                "save the file as UTF-8", file=str(path), line=number) from None
            offset += len(raw)
            yield number, text


def _json(text: str, what: str, err) -> Any:
    """json.loads with each way it fails as one error made by `err` (which names the file, line and field)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise err(f"{what} ({exc.msg}: column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # an integer literal of thousands of digits; nesting too deep
        raise err(f"{what} ({exc})") from None


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) per non-blank line; a malformed line is a DataError naming file:line."""
    for number, text in text_lines(path, "JSONL"):
        if text.strip():
            yield number, _json(text.rstrip("\r\n"), "malformed JSON",
                                lambda msg: DataError(msg, file=str(path), line=number))


def _decode_cells(row: dict, file: str, line: int | str) -> dict:
    """Table formats (CSV, Parquet, HF datasets) may carry structured fields as JSON strings."""
    for name in STRUCTURED:
        if isinstance(row.get(name), str) and row[name]:
            row[name] = _json(row[name], "cell is not valid JSON",
                              lambda msg: DataError(msg, file=file, line=line, field=name))
    return row


def csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows as {header name: cell} with empty cells as None, numbered by the line they start on; a row whose
    field count differs from the header's is an error (csv.DictReader would drop or pad it silently)."""
    csv.field_size_limit(MAX_LINE)  # the default (128 KiB) rejects long documents; without one, no bound at all
    reader = csv.reader((text for _, text in text_lines(path, "CSV")),
                        delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    header: list[str] | None = None
    read = 0  # lines read before the current row
    try:
        for row in reader:
            line, read = read + 1, reader.line_num
            if not row:  # a blank line
                continue
            if header is None:
                header = row
                twice = [name for name, n in Counter(row).items() if n > 1]
                if twice:
                    raise DataError(f"column {twice[0]!r} appears twice in the header", file=str(path), line=line)
            elif len(row) != len(header):
                raise DataError(f"row has {len(row)} field{'s' * (len(row) != 1)}, the header has {len(header)}",
                                file=str(path), line=line)
            else:
                yield line, _decode_cells({n: c if c != "" else None for n, c in zip(header, row)}, str(path), line)
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", file=str(path), line=read + 1) from None


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
            raise DataError(f"dataset has splits {sorted(loaded)}; point at one split's folder or add 'train'",
                            file=str(path))
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return _table_rows(iter(loaded), path)


def _rows(path: Path) -> Iterator[tuple[int | str, Any]]:
    if path.is_dir():
        return _hf_rows(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return jsonl_rows(path)
    if suffix in (".csv", ".tsv"):
        return csv_rows(path)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    raise DataError("unknown data file type (expected .jsonl, .csv, .parquet or a saved Hugging Face "
                    "dataset folder)", file=str(path))


def check_path(path: Path) -> None:
    """What is wrong with the path itself, said before any reader meets it: a missing file, a link loop, a folder
    that is no saved dataset, a file of no bytes."""
    try:
        info = path.stat()
    except OSError as exc:
        reason = {errno.ENOENT: "file not found", errno.ELOOP: "symbolic link loop (the link never reaches a file)"}
        raise DataError(reason.get(exc.errno, f"cannot read the file ({exc.strerror})"), file=str(path)) from None
    if stat.S_ISDIR(info.st_mode) and not any((path / name).is_file() for name in HF_MARKERS):
        raise DataError(f"a folder, but not a saved Hugging Face dataset (no {' or '.join(HF_MARKERS)}); expected "
                        "a data file (.jsonl, .csv, .parquet) or a folder written by save_to_disk", file=str(path))
    if info.st_size == 0 and stat.S_ISREG(info.st_mode):
        raise DataError("the file is empty", file=str(path))


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
                raise DataError("cannot tell the record format: expected 'messages', 'prompt'+'completion', "
                                "'text'+'label' or 'text'", file=file, line=line)
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
