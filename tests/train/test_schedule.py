import pytest
import torch

from deftune.config import TrainingConfig
from deftune.train import schedule


def lrs(cfg, total=100):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = schedule.create(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_wsd_phase_boundaries():
    cfg = TrainingConfig(schedule="wsd", warmup=0.1, decay=0.2, decay_shape="linear", min_lr_ratio=0.0)
    lr = lrs(cfg)
    assert lr[0] == 0.0 and lr[5] == pytest.approx(0.5)  # linear warmup over steps 0..9
    assert lr[10] == pytest.approx(1.0) and lr[79] == pytest.approx(1.0)  # stable plateau at the peak
    assert lr[80] == pytest.approx(1.0) and lr[90] == pytest.approx(0.5) and lr[99] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lr[80:], lr[81:]))
    phases = schedule.Phases.of(cfg, 100)
    assert [phases.phase(s) for s in (0, 9, 10, 79, 80, 99)] == ["warmup"] * 2 + ["stable"] * 2 + ["decay"] * 2


def test_wsd_min_lr_ratio():
    lr = lrs(TrainingConfig(schedule="wsd", warmup=0.0, decay=0.5, decay_shape="cosine", min_lr_ratio=0.1))
    assert lr[0] == pytest.approx(1.0) and min(lr) >= 0.1 - 1e-9 and lr[-1] < 0.12


@pytest.mark.parametrize("name", ["cosine", "linear"])
def test_cosine_and_linear_remain_available(name):
    lr = lrs(TrainingConfig(schedule=name, warmup=0.1))
    assert lr[10] == pytest.approx(1.0) and lr[55] == pytest.approx(0.5, abs=0.02) and lr[-1] < 0.05
    assert schedule.Phases.of(TrainingConfig(schedule=name, warmup=0.1), 100).phase(50) == "decay"


@pytest.mark.parametrize(
    "cfg",
    [
        TrainingConfig(schedule="wsd", warmup=0.1, decay=0.3, decay_shape=shape, min_lr_ratio=0.05)
        for shape in ("linear", "cosine", "1-sqrt")
    ],
)
def test_wsd_matches_transformers_reference(cfg):
    from transformers.optimization import get_wsd_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    phases = schedule.Phases.of(cfg, 100)
    reference = get_wsd_schedule(
        opt,
        num_warmup_steps=phases.warmup,
        num_decay_steps=phases.decay,
        num_training_steps=100,
        decay_type=cfg.decay_shape,
        min_lr_ratio=cfg.min_lr_ratio,
    )
    ours = schedule.LearningRate(cfg, 100)
    assert [ours(s) for s in range(100)] == pytest.approx([reference.lr_lambdas[0](s) for s in range(100)])


def test_moving_the_end_decays_from_now_to_the_new_end():
    cfg = TrainingConfig(schedule="wsd", warmup=0.1, decay=0.2, decay_shape="linear")
    lr = schedule.LearningRate(cfg, 100)
    lr.end_at(40, 50)
    assert lr.phases == schedule.Phases(10, 10, 50)
    assert lr(39) == 1.0 and lr(40) == 1.0 and lr(45) == pytest.approx(0.5) and lr(49) == pytest.approx(0.1)
    assert lr.phases.phase(40) == "decay"
    with pytest.raises(ValueError):
        lr.end_at(45, 48)  # already decaying


def test_a_moved_end_is_saved_and_restored_with_the_scheduler(tmp_path):
    cfg = TrainingConfig(schedule="wsd", warmup=0.1, decay=0.2)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    made = schedule.create(opt, cfg, 100)
    schedule.learning_rate(made).end_at(30, 40)
    torch.save(made.state_dict(), tmp_path / "scheduler.pt")
    fresh = schedule.create(opt, cfg, 100)
    fresh.load_state_dict(torch.load(tmp_path / "scheduler.pt", weights_only=True))
    assert schedule.learning_rate(fresh).phases == schedule.Phases(10, 10, 40)
