"""`deftune run` end to end on the tiny model: every stage once, skipped when nothing changed, only the stages a
change reaches re-run; the report opened in headless Chromium."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deftune import config, pipeline
from deftune.errors import ConfigError
from tests.helpers import classification_file

pytestmark = pytest.mark.slow  # whole pipelines / several training runs each

FAST = [
    "training.max_steps=2",
    "training.eval_steps=2",
    "training.max_tokens=256",
    "data.split.validation=0.25",
    "data.split.test=0.25",
    "evaluation.resamples=100",
    "evaluation.max_new_tokens=4",
    "evaluation.stress_examples=4",
    "evaluation.foreign_examples=3",
    "evaluation.ambiguous_examples=4",
    "evaluation.retention_questions=2",
    "evaluation.perplexity_documents=2",
    "evaluation.perplexity_max_tokens=16",
    "evaluation.review_sample=3",
    "evaluation.retention_benchmarks=[piqa]",
    "evaluation.perturbations=[casing]",
    "safety.bias_examples=4",
    "safety.filter_examples=20",
    "safety.refusal_prompts=2",
    "safety.bias_benchmarks=[crows_pairs]",
]


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("pipeline")
    data = classification_file(root / "topics.jsonl", copies=3)
    cfg = config.load(None, [f"model.spec={tiny_model}", f"data.path={data}", f"run.root={root / 'runs'}", *FAST])
    said = []
    run_dir, outcomes = pipeline.run(cfg, announce=said.append)
    assert len(said) == 1 and said[0].startswith("estimated wall time on this machine")  # said before any stage
    return cfg, run_dir, outcomes


def _statuses(outcomes):
    return {o.stage: o.status for o in outcomes}


def test_every_stage_runs_once_then_is_skipped(tiny_pipeline):
    cfg, run_dir, outcomes = tiny_pipeline
    assert _statuses(outcomes) == {
        "audit": "ran",
        "plan": "ran",
        "train": "ran",
        "evaluate": "ran",
        "safety": "ran",
        "report": "ran",
    }
    assert run_dir.name == pipeline.default_name(cfg)
    for artifact in (
        "audit/audit.json",
        "plan/plan.json",
        "train/result.json",
        "evaluate/eval.json",
        "safety/safety.json",
        "report.html",
    ):
        assert (run_dir / artifact).is_file(), artifact
    state = json.loads((run_dir / "pipeline.json").read_text())
    assert set(state["estimate"]["seconds"]) == set(pipeline.NAMES)  # each stage's estimate beside what it took
    assert all(s["estimated_seconds"] is not None and s["seconds"] >= 0 for s in state["stages"].values())
    said = []
    again, outcomes = pipeline.run(cfg, announce=said.append)
    assert again == run_dir and set(_statuses(outcomes).values()) == {"skipped"} and not said


def test_a_change_reruns_only_the_stages_it_reaches(tiny_pipeline):
    cfg, run_dir, _ = tiny_pipeline
    changed = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"review_sample": 2})})
    assert pipeline.default_name(changed) == run_dir.name  # the same run: training reads nothing new
    _, outcomes = pipeline.run(changed)
    ran = {s for s, status in _statuses(outcomes).items() if status == "ran"}
    assert ran == {"evaluate", "report"}
    _, outcomes = pipeline.run(changed, start="safety")
    assert {s for s, status in _statuses(outcomes).items() if status == "ran"} == {"safety", "report"}
    with pytest.raises(ConfigError, match="unknown stage"):
        pipeline.run(changed, start="deploy")


def test_stage_keys_follow_the_sections_each_stage_reads(tmp_path):
    data = classification_file(tmp_path / "d.jsonl")
    base = config.load(None, [f"data.path={data}"])
    keys = pipeline.keys(base)

    def changed(*overrides):
        return pipeline.keys(config.load(None, [f"data.path={data}", *overrides]))

    assert changed("data.balance.strategy=reweight")["train"] != keys["train"]
    assert changed("training.adversary.weight=0.5")["train"] != keys["train"]
    assert changed("safety.refusal=No.")["train"] == keys["train"]  # read by the safety stage only
    assert changed("safety.refusal=No.")["safety"] != keys["safety"]
    assert changed("evaluation.max_new_tokens=8")["train"] == keys["train"]


def test_data_fingerprint_follows_the_content(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n')
    first = pipeline.data_fingerprint(str(path))
    path.write_text('{"text": "b", "label": "x"}\n')
    assert pipeline.data_fingerprint(str(path)) != first
    assert pipeline.data_fingerprint("embedded:bbc-news") == pipeline.data_fingerprint("embedded:bbc-news")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.processes
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it where it can)")
def test_report_renders_in_headless_chromium(tiny_pipeline, tmp_path):
    _, run_dir, _ = tiny_pipeline
    report = run_dir / "report.html"
    artifacts = Path(os.environ.get("DEFTUNE_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run([*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not re.findall(r"CONSOLE.*", dom.stderr), "console messages while rendering the report"
    for section in ("verdict", "data", "training", "evaluation", "stress", "retention", "reproducibility"):
        assert f'<section id="{section}">' in dom.stdout, section
    assert dom.stdout.count("<svg") >= 5  # training curves, validation, confusion matrix, stress, retention
    shot = artifacts / "report.png"
    done = subprocess.run(
        [*common, "--window-size=1200,3000", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.stat().st_size > 10_000
