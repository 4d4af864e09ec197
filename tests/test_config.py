import pytest

from deftune import config
from deftune.errors import ConfigError


def test_empty_config_is_the_demo():
    cfg = config.load()
    assert cfg.model.spec == "embedded:smollm2-135m-instruct"
    assert cfg.data.path == "embedded:bbc-news"
    assert cfg.method.name == "lora"
    assert set(config.Config.model_fields) >= {"data", "model", "method", "training", "evaluation", "safety", "report"}


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  learning_rate: 1.0e-4\n  epochs: 2\nmethod:\n  lora:\n    r: 4\n")
    cfg = config.load(
        path,
        ["training.epochs=3", "method.lora.target_modules=[q_proj, v_proj]", "model.precision=fp32", "run.name=my-run"],
    )
    assert cfg.training.learning_rate == 1e-4
    assert cfg.training.epochs == 3  # the override wins over the file
    assert cfg.method.lora.r == 4
    assert cfg.method.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.model.precision == "fp32" and cfg.run.name == "my-run"


def test_dump_round_trips(tmp_path):
    cfg = config.load(None, ["training.learning_rate=3e-5", "data.labels=[a, b]"])
    path = tmp_path / "resolved.yaml"
    path.write_text(config.dump(cfg))
    assert config.load(path) == cfg


@pytest.mark.parametrize(
    "override, expected",
    [
        ("training.lerning_rate=1e-4", "training.lerning_rate: unknown key (did you mean 'training.learning_rate'?)"),
        ("trainig.epochs=2", "trainig: unknown key (did you mean 'training'?)"),
        ("method.lora.rank=8", "method.lora.rank: unknown key (known keys: r, alpha, target_modules)"),
    ],
)
def test_unknown_keys_suggest_the_closest(override, expected):
    with pytest.raises(ConfigError) as info:
        config.load(None, [override])
    assert expected in str(info.value)


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  spc: x\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.spc: unknown key \(did you mean 'model\.spec'\?\)"):
        config.load(path)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("training.learning_rate=-1", "training.learning_rate: Input should be greater than 0"),
        (
            "method.name=magic",
            "method.name: Input should be 'adapter', 'dora', 'full', 'ia3', 'lora', 'prefix' or 'qlora'",
        ),
        ("data.split.validation=0.85", "validation + test must be below 1"),
        ("training.epochs=many", "training.epochs"),
        ("novalue", "expected key=value"),
        (
            "method.name=prefix training.gradient_checkpointing=true",
            "method prefix does not train with training.gradient_checkpointing",
        ),
    ],
)
def test_invalid_values(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("+", r"\+").replace("(", r"\(")):
        config.load(None, override.split())


def test_bad_yaml_reports_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 1\n  lr: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.file == str(path) and info.value.line is not None
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load(path)
    with pytest.raises(ConfigError, match="cannot read config"):
        config.load(tmp_path / "missing.yaml")


@pytest.mark.parametrize("old", ["training.bf16=true", "training.fp16=false", "evaluation.bf16=false"])
def test_merged_precision_knobs_name_their_successor(old):
    with pytest.raises(ConfigError, match=rf"{old.split('=')[0]}: this key was replaced by model.precision \(auto"):
        config.load(None, [old])
