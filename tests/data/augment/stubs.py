"""A config for the tiny model (fluency judged by repetition only, unless a test asks) and a stub translator (the
pluggable interface, with answers chosen by the test)."""

from deftune.config import Config, validate


def config(**augment) -> Config:
    """The default config with data.augment settings changed (short generations for the tiny model)."""
    return validate(
        {"data": {"augment": {"max_new_tokens": 12, "candidates": 2, "max_perplexity_ratio": None, **augment}}}
    )


class StubTranslator:
    """Back-translates each text to the variant given for it (unchanged when none), and records what it saw."""

    engine, prompt_version = "stub", None

    def __init__(self, variants: dict[str, str]):
        self.variants, self.seen = variants, []

    def translate(self, texts, source, target):
        self.seen += texts
        if target != "eng":
            return [f"<{t}>" for t in texts]
        return [self.variants.get(t[1:-1], t[1:-1]) for t in texts]


class StubLLM:
    """Stands in for the paraphrasing model: the k-th prompt about a text gets the k-th reply given for it."""

    spec = "stub-llm"

    def __init__(self, replies: dict[str, list[str]]):
        self.replies, self.prompts = replies, []

    def complete(self, contents, settings):
        from deftune.core.inference import Generation

        self.prompts += contents
        out, asked = [], {}
        for content in contents:
            text = content.rsplit("Text:\n", 1)[1]
            k = asked[text] = asked.get(text, -1) + 1
            reply = self.replies.get(text, [text])
            out.append(Generation(reply[k % len(reply)], 5, True))
        return out
