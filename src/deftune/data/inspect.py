"""A colourised token/label view of rendered examples: the quickest way to see what a run will train on."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from .records import Record
from .render import IGNORE, Rendered, Renderer


def token_view(tokenizer, rendered: Rendered) -> Text:
    """Each token on its own: green when trained, dim when masked, special tokens reversed."""
    special = set(tokenizer.all_special_ids)
    text = Text()
    for token, label in zip(rendered.input_ids, rendered.labels):
        piece = tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        style = "bold green" if label != IGNORE else "dim"
        if token in special:
            style += " reverse"
        text.append(piece, style=style)
    return text


def show(console: Console, renderer: Renderer, records: list[Record]) -> None:
    for record in records:
        rendered = renderer.render(record)
        console.rule(f"{record.id}  ·  {len(rendered)} tokens, {rendered.n_trained} trained  ·  {record.source}")
        console.print(token_view(renderer.tokenizer, rendered))
    console.print("[bold green]green[/]: trained   [dim]dim[/]: masked   [reverse]reversed[/]: special token")
