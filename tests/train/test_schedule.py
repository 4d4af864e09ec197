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
