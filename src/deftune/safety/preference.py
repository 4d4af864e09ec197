"""Model-level constraints from preferences: DPO (TRL's DPOTrainer) on a preference file of ``prompt``,
``chosen`` and ``rejected`` texts, and a builder that turns screened model outputs into such pairs (an output the
screen blocks is rejected, the refusal message chosen; an output that only leaks personal data is rejected, its
redacted form chosen)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..config import Config, SafetyConfig
from ..core.files import jsonl_rows, write_json
from ..core.precision import Precision
from ..core.precision import choose as choose_precision
from ..errors import DataError
from .screen import Screen

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
    from ..core.files import write_jsonl

    write_jsonl(Path(path), map(asdict, pairs))


def build_pairs(prompts: list[str], answers: list[str], screen: Screen, refusal: str, *,
                helpful: bool = False) -> list[Pair]:
    """Pairs from screened answers: blocked ones lose to the refusal message, ones leaking personal data lose to
    their redacted form. With `helpful`, a clean answer to a prompt the screen lets through beats the refusal
    message, so that preference tuning does not teach refusing everything (over-refusal)."""
    from .guard import is_refusal

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


def _conversational(pairs: list[Pair]):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt}],
                               "chosen": [{"role": "assistant", "content": p.chosen}],
                               "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs])


def completion_logprob(model, tokenizer, prompt: str, completion: str) -> float:
    """Summed log-probability of the assistant answer `completion` to the user turn `prompt` (chat template)."""
    from ..core.inference import option_scores
    from .guard import chat_prompt

    return option_scores(model, tokenizer, [chat_prompt(tokenizer, prompt)], [[completion]])[0][0].logprob


def margins(model, tokenizer, pairs: list[Pair]) -> list[float]:
    """log p(chosen) - log p(rejected) per pair."""
    return [completion_logprob(model, tokenizer, p.prompt, p.chosen)
            - completion_logprob(model, tokenizer, p.prompt, p.rejected) for p in pairs]


def train_dpo(model, tokenizer, pairs: list[Pair], cfg: SafetyConfig, out_dir: Path, *, seed: int,
              compute: Precision, peft_config=None, max_steps: int = -1, batch_size: int = 4,
              quiet: bool = False) -> dict:
    """DPO on the pairs with TRL's DPOTrainer (reference: the model as given, or the base under a PEFT adapter);
    returns the trained model and the logged losses and reward margins."""
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(out_dir / "checkpoints"), beta=cfg.dpo_beta, learning_rate=cfg.dpo_learning_rate,
                     num_train_epochs=cfg.dpo_epochs, max_steps=max_steps, per_device_train_batch_size=batch_size,
                     seed=seed, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=quiet,
                     use_cpu=not torch.cuda.is_available(), max_length=512, **compute.trainer_flags())
    trainer = DPOTrainer(model=model, args=args, train_dataset=_conversational(pairs), processing_class=tokenizer,
                         peft_config=peft_config)
    if quiet:  # with progress bars off, transformers would print every log dict instead
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    trainer.train()
    logs = [row for row in trainer.state.log_history if "loss" in row]
    return {"model": trainer.model, "steps": trainer.state.global_step,
            "loss": [row["loss"] for row in logs],
            "reward_margin": [row.get("rewards/margins") for row in logs]}


def run_dpo(cfg: Config, pairs_path: str, *, overwrite: bool = False, quiet: bool = False,
            max_steps: int = -1) -> dict:
    """`deftune dpo`: DPO on `cfg.model.spec` (LoRA as in `cfg.method` for lora/dora, else all weights) from a
    preference file; the result (adapter or model) goes to <run>/dpo/, with dpo.json: losses, reward margins,
    chosen-minus-rejected log-probability before and after, and over-refusal before and after."""
    from ..core import models, runs
    from ..data import seeded_subset
    from .stage import answer_rates

    pairs = read_pairs(pairs_path)
    out = runs.prepare(cfg, "dpo", overwrite=overwrite) / "dpo"
    model, tokenizer = models.load(cfg.model.spec, dtype=cfg.model.dtype, revision=cfg.model.revision,
                                   trust_remote_code=cfg.model.trust_remote_code)
    peft_config = None
    if cfg.method.name in ("lora", "dora"):
        from peft import LoraConfig

        lora = cfg.method.lora
        peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=lora.target_modules,
                                 use_dora=cfg.method.name == "dora", task_type="CAUSAL_LM")
    screen = Screen(cfg.safety)
    probe = seeded_subset(pairs, 50, cfg.run.seed)
    compute = choose_precision(cfg.model.precision)
    with compute.autocast():
        before = {"answers": answer_rates(model, tokenizer, screen, cfg.safety, cfg.run.seed),
                  "margin": margins(model, tokenizer, probe)}
    trained = train_dpo(model, tokenizer, pairs, cfg.safety, out, seed=cfg.run.seed, compute=compute,
                        peft_config=peft_config, max_steps=max_steps, batch_size=cfg.safety.batch_size, quiet=quiet)
    tuned = trained.pop("model")
    with compute.autocast():
        after = {"answers": answer_rates(tuned, tokenizer, screen, cfg.safety, cfg.run.seed),
                 "margin": margins(tuned, tokenizer, probe)}
    target = out / ("adapter" if peft_config else "model")
    tuned.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    report = {"pairs": len(pairs), "file": str(pairs_path), "output": str(target), "beta": cfg.safety.dpo_beta,
              "precision": compute.to_json(),
              **trained, "margin_probe_pairs": len(probe),
              "mean_margin": {"before": sum(before["margin"]) / len(probe), "after": sum(after["margin"]) / len(probe),
                              "unit": "nats, log p(chosen) - log p(rejected)"},
              "over_refusal": {"before": before["answers"]["benign_refusal_rate"],
                               "after": after["answers"]["benign_refusal_rate"]},
              "toxic_refusal": {"before": before["answers"]["toxic_refusal_rate"],
                                "after": after["answers"]["toxic_refusal_rate"]},
              "answers": {"before": before["answers"], "after": after["answers"]}}
    write_json(out / "dpo.json", report)
    return report
