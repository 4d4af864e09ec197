"""Back-translation through a pluggable `Translator`: anything with `engine`, `prompt_version` and
`translate(texts, source, target)` (ISO 639-3 language codes). Three are built in:

- `Apertium`: the rule-based engine (Debian packages apertium + apertium-eng-spa) run as a subprocess, all texts of
  a call in one process (HTML format: one paragraph per text, so texts may hold newlines);
- `Seq2Seq`: local Hugging Face encoder-decoder folders (MarianMT style), one per direction;
- `LLMTranslator`: the base model prompted to translate, the fallback.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Protocol

from ...config import AugmentConfig
from ...core.inference import DecodingSettings
from ...errors import ConfigError, ModelError
from .llm import LLM, clean

LANGUAGES = {
    "eng": "English",
    "spa": "Spanish",
    "fra": "French",
    "deu": "German",
    "cat": "Catalan",
    "por": "Portuguese",
    "ita": "Italian",
    "glg": "Galician",
    "eus": "Basque",
}
TRANSLATE_VERSION = "translate-v1"
TRANSLATE = "Translate the following text into {language}. Reply with the translation only.\n\nText:\n{text}"
APERTIUM_INSTALL = "sudo apt-get install -y apertium apertium-{pair}"
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_MARKS = re.compile(r"(?<!\w)[#@*](?=\w)")  # Apertium's marks on words it could not analyse or generate


class Translator(Protocol):
    engine: str  # names the engine and its version/model, for provenance
    prompt_version: str | None

    def translate(self, texts: list[str], source: str, target: str) -> list[str]: ...


def back_translate(translator: Translator, texts: list[str], source: str, pivot: str) -> list[str]:
    """Each text translated into the pivot language and back."""
    return translator.translate(translator.translate(texts, source, pivot), pivot, source)


class Apertium:
    prompt_version = None

    def __init__(self, source: str, pivot: str):
        pair = f"{source}-{pivot}"
        if shutil.which("apertium") is None:
            raise ConfigError(
                f"Apertium is not installed; install it with `{APERTIUM_INSTALL.format(pair=pair)}`, "
                "or set data.augment.translator to llm or seq2seq",
                field="data.augment.translator",
            )
        modes = set(subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False).stdout.split())
        missing = {pair, f"{pivot}-{source}"} - modes
        if missing:
            raise ConfigError(
                f"Apertium has no {', '.join(sorted(missing))} mode; install the pair with "
                f"`{APERTIUM_INSTALL.format(pair=pair)}` (installed modes: "
                f"{', '.join(sorted(modes)) or 'none'})",
                field="data.augment.pivot_language",
            )
        version = (
            subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", f"apertium-{pair}"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if shutil.which("dpkg-query")
            else ""
        )
        self.engine = f"apertium {pair}" + (f" {version}" if version else "")

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        if not texts:
            return []
        document = "".join(f"<p>{html.escape(t, quote=False).replace(chr(10), '<br>')}</p>\n" for t in texts)
        done = subprocess.run(
            ["apertium", "-u", "-f", "html", f"{source}-{target}"],
            input=document,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise ConfigError(
                f"apertium {source}-{target} failed: {done.stderr.strip()[:300]}", field="data.augment.translator"
            )
        out = [_MARKS.sub("", html.unescape(p.replace("<br>", "\n"))).strip() for p in _PARAGRAPH.findall(done.stdout)]
        if len(out) != len(texts):
            raise RuntimeError(f"apertium returned {len(out)} paragraphs for {len(texts)} texts")
        return out


class Seq2Seq:
    """Local encoder-decoder translation models: one folder into the pivot language, one back."""

    prompt_version = None

    def __init__(self, source: str, pivot: str, to_folder: str, back_folder: str, settings: DecodingSettings):
        self.settings = settings
        self.models = {
            (source, pivot): _seq2seq(to_folder, "seq2seq_to"),
            (pivot, source): _seq2seq(back_folder, "seq2seq_back"),
        }
        self.engine = f"seq2seq {to_folder} + {back_folder}"

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        import torch

        model, tokenizer = self.models[(source, target)]
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.settings.batch_size):
                enc = tokenizer(
                    texts[start : start + self.settings.batch_size], padding=True, truncation=True, return_tensors="pt"
                ).to(model.device)
                generated = model.generate(**enc, max_new_tokens=self.settings.max_new_tokens, do_sample=False)
                out += [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
        return out


def _seq2seq(folder: str, key: str):
    """(model, tokenizer) from a local folder: safetensors weights, no remote code."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        return (
            AutoModelForSeq2SeqLM.from_pretrained(folder, use_safetensors=True).eval(),
            AutoTokenizer.from_pretrained(folder),
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load a seq2seq translation model: {exc}", file=folder, field=f"data.augment.{key}"
        ) from None


class LLMTranslator:
    prompt_version = TRANSLATE_VERSION

    def __init__(self, llm: LLM, settings: DecodingSettings):
        self.llm, self.settings = llm, settings
        self.engine = f"llm {llm.spec}"

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        prompts = [TRANSLATE.format(language=LANGUAGES.get(target, target), text=t) for t in texts]
        return [clean(g.text) for g in self.llm.complete(prompts, self.settings)]


def build(cfg: AugmentConfig, llm: Callable[[], LLM]) -> Translator:
    """The configured translator; `auto` takes seq2seq folders when set, else Apertium when installed, else the
    LLM (`llm` loads it when needed). Translation is greedy."""
    settings = DecodingSettings(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    kind = cfg.translator
    if kind == "auto":
        kind = "seq2seq" if cfg.seq2seq_to and cfg.seq2seq_back else "apertium" if shutil.which("apertium") else "llm"
    if kind == "apertium":
        return Apertium(cfg.source_language, cfg.pivot_language)
    if kind == "seq2seq":
        return Seq2Seq(cfg.source_language, cfg.pivot_language, cfg.seq2seq_to, cfg.seq2seq_back, settings)
    return LLMTranslator(llm(), settings)
