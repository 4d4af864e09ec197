"""Model-level constraints from preferences: DPO (TRL's DPOTrainer) on a preference file of ``prompt``,
``chosen`` and ``rejected`` texts, and a builder that turns screened model outputs into such pairs (an output the
screen blocks is rejected, the refusal message chosen; an output that only leaks personal data is rejected, its
redacted form chosen)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import methods
from ..config import Config
from ..core import runs
from ..core.files import jsonl_rows, write_json, write_jsonl
from ..core.inference import option_scores
from ..core.precision import choose as choose_precision
from ..data import seeded_subset
from ..errors import DataError
from ..train import recipe
from ..train.dpo import train_dpo
from .guard import chat_prompt, is_refusal
from .screen import Screen
from .stage import answer_rates

log = logging.getLogger(__name__)
FIELDS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    reason: str = ""  # why the builder made the pair (empty for pairs read from a file)


def read_pairs(path: str | Path) -> list[Pair]:
    """Preference pairs from JSONL; every record needs non-empty strings prompt, chosen and rejected."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    pairs = []
    for line, row in jsonl_rows(path):
        if not isinstance(row, dict):
            raise DataError("expected a JSON object with prompt, chosen and rejected", file=str(path), line=line)
        for name in FIELDS:
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise DataError("expected a non-empty string", file=str(path), line=line, field=name)
        if row["chosen"] == row["rejected"]:
            raise DataError("chosen and rejected are the same text", file=str(path), line=line, field="rejected")
        pairs.append(Pair(row["prompt"], row["chosen"], row["rejected"]))
    if not pairs:
        raise DataError("no preference pairs: the file is empty", file=str(path))
    return pairs


def write_pairs(path: str | Path, pairs: list[Pair]) -> None:
    write_jsonl(Path(path), map(asdict, pairs))


def build_pairs(
    prompts: list[str], answers: list[str], screen: Screen, refusal: str, *, helpful: bool = False
) -> list[Pair]:
    """Pairs from screened answers: blocked ones lose to the refusal message, ones leaking personal data lose to
    their redacted form. With `helpful`, a clean answer to a prompt the screen lets through beats the refusal
    message, so that preference tuning does not teach refusing everything (over-refusal)."""
    pairs = []
    allowed = [not v.blocked for v in screen(prompts)] if helpful else [False] * len(prompts)
    for prompt, answer, verdict, ok in zip(prompts, answers, screen(answers), allowed):
        if verdict.blocked:
            pairs.append(Pair(prompt, refusal, answer, "blocked: " + ", ".join(verdict.categories)))
        elif verdict.flagged:
            pairs.append(Pair(prompt, verdict.redacted, answer, "personal data"))
        elif ok and answer.strip() and not is_refusal(answer, refusal):
            pairs.append(Pair(prompt, answer, refusal, "helpful: refusing a safe prompt"))
    return pairs


def conversational(pairs: list[Pair]) -> list[dict]:
    """The pairs as TRL's conversational preference rows."""
    return [
        {
            "prompt": [{"role": "user", "content": p.prompt}],
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]


def completion_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """Summed log-probability of the assistant answer `completion` to the user turn `prompt` (chat template)."""
    return option_scores(model, tokenizer, [chat_prompt(tokenizer, prompt)], [[completion]])[0][0].logprob


def margins(model, tokenizer, pairs: list[Pair]) -> list[float]:
    """log p(chosen) - log p(rejected) per pair."""
    return [
        completion_logprob(model, tokenizer, p.prompt, p.chosen)
        - completion_logprob(model, tokenizer, p.prompt, p.rejected)
        for p in pairs
    ]


def run_dpo(cfg: Config, pairs_path: str, *, overwrite: bool = False, quiet: bool = False, max_steps: int = -1) -> dict:
    """`deftune dpo`: DPO on `cfg.model.spec`, trained with `cfg.method` (any registered method) from a
    preference file; the result (adapter or model) goes to <run>/dpo/, with dpo.json: losses, reward margins,
    chosen-minus-rejected log-probability before and after, and over-refusal before and after."""
    pairs = read_pairs(pairs_path)
    out = runs.prepare(cfg, "dpo", overwrite=overwrite) / "dpo"
    model, tokenizer = recipe.load_model(cfg)
    screen = Screen(cfg.safety)
    probe = seeded_subset(pairs, 50, cfg.run.seed)
    compute = choose_precision(cfg.model.precision)
    with compute.autocast():
        before = {
            "answers": answer_rates(model, tokenizer, screen, cfg.safety, cfg.run.seed),
            "margin": margins(model, tokenizer, probe),
        }
    model = methods.apply(model, cfg.method, cfg.training.dropout)
    trained = train_dpo(
        model,
        tokenizer,
        conversational(pairs),
        cfg.dpo,
        out,
        seed=cfg.run.seed,
        compute=compute,
        max_steps=max_steps,
        batch_size=cfg.safety.batch_size,
        quiet=quiet,
    )
    tuned = trained.pop("model")
    with compute.autocast():
        after = {
            "answers": answer_rates(tuned, tokenizer, screen, cfg.safety, cfg.run.seed),
            "margin": margins(tuned, tokenizer, probe),
        }
    target = methods.save(tuned, cfg.method, out)
    tokenizer.save_pretrained(target)
    report = {
        "pairs": len(pairs),
        "file": str(pairs_path),
        "output": str(target),
        "beta": cfg.dpo.beta,
        "precision": compute.to_json(),
        **trained,
        "margin_probe_pairs": len(probe),
        "mean_margin": {
            "before": sum(before["margin"]) / len(probe),
            "after": sum(after["margin"]) / len(probe),
            "unit": "nats, log p(chosen) - log p(rejected)",
        },
        "over_refusal": {
            "before": before["answers"]["benign_refusal_rate"],
            "after": after["answers"]["benign_refusal_rate"],
        },
        "toxic_refusal": {
            "before": before["answers"]["toxic_refusal_rate"],
            "after": after["answers"]["toxic_refusal_rate"],
        },
        "answers": {"before": before["answers"], "after": after["answers"]},
    }
    write_json(out / "dpo.json", report)
    return report
