"""Reading and writing files safely.

Readers take hostile files in their stride: text is read in binary, one bounded line at a time, and decoded line by
line, so a file that is not UTF-8 or has one endless line gives one error naming its line instead of a traceback or
an exhausted memory; every problem is a DataError naming file:line. Writers replace a file atomically, so readers
see the old content or the new, never half of it."""

from __future__ import annotations

import codecs
import csv
import errno
import json
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DataError

MAX_LINE = 32 << 20  # bytes in one JSONL line or CSV field; anything larger is not one training example
HF_MARKERS = ("state.json", "dataset_dict.json")  # what `save_to_disk` writes for a Dataset / a DatasetDict


def check_path(path: Path) -> None:
    """What is wrong with the path itself, said before any reader meets it: a missing file, a link loop, a folder
    that is no saved dataset, a file of no bytes."""
    try:
        info = path.stat()
    except OSError as exc:
        reason = {errno.ENOENT: "file not found", errno.ELOOP: "symbolic link loop (the link never reaches a file)"}
        raise DataError(reason.get(exc.errno, f"cannot read the file ({exc.strerror})"), file=str(path)) from None
    if stat.S_ISDIR(info.st_mode) and not any((path / name).is_file() for name in HF_MARKERS):
        raise DataError(
            f"a folder, but not a saved Hugging Face dataset (no {' or '.join(HF_MARKERS)}); expected "
            "a data file (.jsonl, .csv, .parquet) or a folder written by save_to_disk",
            file=str(path),
        )
    if info.st_size == 0 and stat.S_ISREG(info.st_mode):
        raise DataError("the file is empty", file=str(path))


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
                raise DataError(
                    f"the line is over {MAX_LINE >> 20} MiB (a single record that large is not a "
                    f"training example; is this a {kind} file?)",
                    file=str(path),
                    line=number,
                )
            skip = len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[skip:].decode("utf-8")
            except UnicodeDecodeError as exc:
                at = skip + exc.start
                raise DataError(
                    f"not valid UTF-8 (byte 0x{raw[at]:02x} at byte offset {offset + at} of the file); "
                    "save the file as UTF-8",
                    file=str(path),
                    line=number,
                ) from None
            offset += len(raw)
            yield number, text


def parse_json(text: str, what: str, err) -> Any:
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
            yield (
                number,
                parse_json(
                    text.rstrip("\r\n"),
                    "malformed JSON",
                    lambda msg, number=number: DataError(msg, file=str(path), line=number),
                ),
            )


def csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows as {header name: cell} with empty cells as None, numbered by the line they start on (a quoted cell may
    span lines); a row whose field count differs from the header's is an error (csv.DictReader would drop or pad
    it silently)."""
    csv.field_size_limit(MAX_LINE)  # the default (128 KiB) rejects long documents; without one, no bound at all
    reader = csv.reader(
        (text for _, text in text_lines(path, "CSV")), delimiter="\t" if path.suffix.lower() == ".tsv" else ","
    )
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
                raise DataError(
                    f"row has {len(row)} field{'s' * (len(row) != 1)}, the header has {len(header)}",
                    file=str(path),
                    line=line,
                )
            else:
                yield line, {n: c if c != "" else None for n, c in zip(header, row)}
    except csv.Error as exc:
        raise DataError(f"malformed CSV ({exc})", file=str(path), line=read + 1) from None


def write_atomic(path: Path, text: str) -> None:
    """Write a text file so that readers see either the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_jsonl(path: Path, rows) -> None:
    """One JSON object per line (UTF-8, not escaped), written atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
