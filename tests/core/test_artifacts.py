"""The typed run artifacts: what a real tiny pipeline writes parses, the trainer's result fits its model, a renamed
field fails the report loudly, and files without a schema version read as version 1."""

import json
import shutil

import pytest

from deftune.core.artifacts import (
    EvalArtifact,
    PipelineArtifact,
    ResultArtifact,
    SafetyArtifact,
)
from deftune.errors import RunError
from deftune.pipeline import NAMES
from deftune.report import build
from deftune.train import TrainResult
from tests.test_pipeline import tiny_pipeline  # noqa: F401 (the fixture, used through run_dir)

ARTIFACTS = {
    "train/result.json": ResultArtifact,
    "evaluate/eval.json": EvalArtifact,
    "safety/safety.json": SafetyArtifact,
    "pipeline.json": PipelineArtifact,
}


@pytest.fixture(scope="module")
def run_dir(request):
    """The run folder of tests/test_pipeline.py's tiny pipeline, run once for this module."""
    return request.getfixturevalue("tiny_pipeline")[1]


@pytest.mark.slow
def test_a_pipeline_run_writes_artifacts_that_parse(run_dir):
    found = {relative: model.read(run_dir / relative) for relative, model in ARTIFACTS.items()}
    assert all(artifact.schema_version == 1 for artifact in found.values())
    assert found["train/result.json"].steps == 2 and set(found["pipeline.json"].stages) == set(NAMES)
    assert set(found["evaluate/eval.json"].systems) == {"base", "tuned"} and found["evaluate/eval.json"].stress
    assert "change" in found["safety/safety.json"].answers
    for relative in ("evaluate/eval.json", "safety/safety.json", "pipeline.json"):  # written through their models
        assert json.loads((run_dir / relative).read_text())["schema_version"] == 1, relative


@pytest.mark.slow
def test_the_trainers_result_fits_its_model(run_dir):
    recorded = json.loads((run_dir / "train" / "result.json").read_text())
    recorded.pop("schema_version", None)  # once the trainer writes through ResultArtifact
    result = TrainResult(**recorded)
    assert ResultArtifact.model_validate(result.to_json()).schema_version == 1
    result.batching["oom_backoffs"] = [128]  # what train() adds after writing result.json
    assert ResultArtifact.model_validate(result.to_json()).batching.oom_backoffs == [128]


@pytest.mark.slow
def test_a_renamed_field_fails_the_report_naming_file_and_field(run_dir, tmp_path):
    shutil.copy(run_dir / "config.yaml", tmp_path / "config.yaml")
    found = json.loads((run_dir / "evaluate" / "eval.json").read_text())
    found["stress"]["rephrasings"]["synonyms"] = found["stress"]["rephrasings"].pop("synonym_source")
    copy = tmp_path / "evaluate" / "eval.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(found))
    with pytest.raises(RunError) as caught:
        build(tmp_path)
    assert caught.value.file == str(copy) and caught.value.field == "stress.rephrasings.synonym_source"
    assert "stress.rephrasings.synonyms: Extra inputs are not permitted" in str(caught.value)


def test_a_file_without_schema_version_reads_as_version_1(tmp_path):
    path = tmp_path / "pipeline.json"
    stage = {"key": "abc", "seconds": 1.5, "estimated_seconds": None, "finished": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({"stages": {"train": stage}}))
    read = PipelineArtifact.read(path)
    assert read.schema_version == 1 and read.stages["train"].key == "abc"
    read.write(path)
    assert json.loads(path.read_text())["schema_version"] == 1
    path.write_text(json.dumps({"schema_version": 2, "stages": {}}))
    with pytest.raises(RunError, match="less than or equal to 1") as caught:
        PipelineArtifact.read(path)
    assert caught.value.field == "schema_version"
