"""Rendering records into token ids and loss labels, so that only what the model should learn to say is trained.

A record is turned into text segments, each marked trained or not: with a chat template, every assistant turn's
text through its end-of-turn token is trained and everything else (system, user, template scaffolding) is not;
without a template (base models), the prompt is untrained and the completion plus EOS is trained; ``text``
records are trained whole. Segments are tokenized separately and concatenated, which is exactly what the model
sees at inference (the prompt is tokenized alone and the answer follows it).

`check` is the self-check run on every rendered example: it fails loudly on examples that train on zero tokens,
train on prompt text, or lack a trained EOS (the silent masking bugs frameworks keep shipping).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DataError
from .records import Record

IGNORE = -100


@dataclass
class Rendered:
    id: str
    input_ids: list[int]
    labels: list[int]
    segments: list[tuple[str, bool]] = field(repr=False, default_factory=list)
    weight: float = 1.0  # scales the example's token losses (its record's meta.weight, in training)

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class RenderStats:
    rendered: int = 0
    too_long: list[str] = field(default_factory=list)  # ids of examples dropped for exceeding max_length
    trained_tokens: int = 0
    total_tokens: int = 0


class Renderer:
    """Renders records of one dataset for one tokenizer."""

    def __init__(
        self,
        tokenizer,
        *,
        labels: list[str] | None = None,
        instruction: str | None = None,
        max_input_tokens: int | None = None,
        max_length: int | None = None,
    ):
        if tokenizer.eos_token is None:
            raise DataError("the tokenizer has no EOS token; cannot mark where answers end")
        self.tokenizer = tokenizer
        self.labels = labels or []
        self.instruction = instruction or "{text}"
        self.max_input_tokens = max_input_tokens
        self.max_length = max_length
        self.has_template = bool(getattr(tokenizer, "chat_template", None))

    # ---- text ------------------------------------------------------------------------------------------
    def _truncate(self, text: str) -> str:
        if not self.max_input_tokens:
            return text
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_input_tokens:
            return text
        return self.tokenizer.decode(ids[: self.max_input_tokens]).rstrip() + " …"

    def classification_prompt(self, record: Record) -> str:
        return self.instruction.format(labels=", ".join(self.labels), text=self._truncate(record.text))

    def messages(self, record: Record) -> list[dict[str, str]]:
        """The record as a conversation (chat, completion and classification formats)."""
        if record.format == "chat":
            return record.messages
        if record.format == "completion":
            return [{"role": "user", "content": record.prompt}, {"role": "assistant", "content": record.completion}]
        if record.format == "classification":
            return [
                {"role": "user", "content": self.classification_prompt(record)},
                {"role": "assistant", "content": record.label},
            ]
        raise ValueError(f"{record.format} records are not conversations")

    def prompt_text(self, record: Record) -> str:
        """What the model is given at inference: everything before the (last) answer."""
        segments = self.segments(record)
        last_trained = max(i for i, (_, trained) in enumerate(segments) if trained)
        return "".join(text for text, _ in segments[:last_trained])

    def _template(self, messages, *, generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _chat_segments(self, messages: list[dict[str, str]], record: Record) -> list[tuple[str, bool]]:
        eos = self.tokenizer.eos_token
        full = self._template(messages)
        segments: list[tuple[str, bool]] = []
        pos = 0
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(self._template(messages[:i], generation_prompt=True))
            through = self._template(messages[: i + 1])
            if not full.startswith(through) or start > len(through):
                raise DataError(
                    "the chat template renders earlier turns differently once later turns are "
                    "added; cannot locate assistant turns for masking",
                    file=record.source,
                )
            answer = full[start : len(through)]
            cut = answer.rfind(eos)
            if cut < 0:  # the template does not end turns with EOS: add it, so the model learns to stop
                trained, rest = answer + eos, ""
            else:
                trained, rest = answer[: cut + len(eos)], answer[cut + len(eos) :]
            segments += [(full[pos:start], False), (trained, True), (rest, False)]
            pos = len(through)
        segments.append((full[pos:], False))
        return [s for s in segments if s[0]]

    def segments(self, record: Record) -> list[tuple[str, bool]]:
        eos = self.tokenizer.eos_token
        if record.format == "text":
            return [(record.text + eos, True)]
        if self.has_template:
            return self._chat_segments(self.messages(record), record)
        if record.format == "chat":
            raise DataError(
                "chat records need a tokenizer with a chat template (this model has none)",
                file=record.source,
                field="messages",
            )
        prompt, answer = self.messages(record)
        return [(prompt["content"], False), (answer["content"] + eos, True)]

    # ---- tokens ----------------------------------------------------------------------------------------
    def render(self, record: Record) -> Rendered:
        input_ids: list[int] = []
        labels: list[int] = []
        segments = self.segments(record)
        for text, trained in segments:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            input_ids += ids
            labels += ids if trained else [IGNORE] * len(ids)
        bos = self.tokenizer.bos_token_id
        if bos is not None and self._adds_bos() and input_ids[:1] != [bos]:
            input_ids.insert(0, bos)
            labels.insert(0, IGNORE)
        rendered = Rendered(record.id, input_ids, labels, segments)
        check(rendered, self.tokenizer, source=record.source)
        return rendered

    def _adds_bos(self) -> bool:
        """Whether the tokenizer itself starts sequences with BOS (Llama-2 style), which we then keep."""
        if not hasattr(self, "_bos"):
            ids = self.tokenizer("a")["input_ids"]
            self._bos = bool(ids) and ids[0] == self.tokenizer.bos_token_id
        return self._bos

    def render_all(self, records: list[Record]) -> tuple[list[Rendered], RenderStats]:
        """Render every record; examples longer than max_length are dropped and counted, never cut silently."""
        out: list[Rendered] = []
        stats = RenderStats()
        for record in records:
            rendered = self.render(record)
            if self.max_length and len(rendered) > self.max_length:
                stats.too_long.append(record.id)
                continue
            out.append(rendered)
            stats.rendered += 1
            stats.trained_tokens += rendered.n_trained
            stats.total_tokens += len(rendered)
        if records and not out:
            raise DataError(
                f"every example is longer than max_length={self.max_length} tokens; raise "
                "data.max_length or shorten the inputs"
            )
        return out, stats


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive trained positions."""
    runs, start = [], None
    for i, label in enumerate(labels + [IGNORE]):
        if label != IGNORE and start is None:
            start = i
        elif label == IGNORE and start is not None:
            runs.append((start, i))
            start = None
    return runs


def check(rendered: Rendered, tokenizer, *, source: str = "") -> None:
    """Fail loudly on masking errors: zero trained tokens, trained prompt text, or a trained span without EOS."""
    where = source or rendered.id
    runs = _runs(rendered.labels)
    if not runs:
        raise DataError("example trains on zero tokens (is the response empty or masked away?)", file=where)
    expected = "".join(text for text, trained in rendered.segments if trained)
    got = "".join(
        tokenizer.decode(rendered.input_ids[a:b], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        for a, b in runs
    )
    if got != expected:
        raise DataError(
            f"trained tokens do not match the answer text: expected {expected[:80]!r}, trained "
            f"{got[:80]!r} (prompt text trained, or answer tokens merged with the prompt)",
            file=where,
        )
    eos = tokenizer.eos_token_id
    for _, b in runs:
        if rendered.input_ids[b - 1] != eos:
            raise DataError(
                f"a trained span does not end with EOS ({tokenizer.eos_token!r}): the model would not learn to stop",
                file=where,
            )
