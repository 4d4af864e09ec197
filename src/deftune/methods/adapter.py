"""Method `adapter`: Houlsby bottleneck adapters after each attention block and MLP (the implementation, which
loads torch, is methods._bottleneck, imported when an adapter is built, saved, loaded or recognised: the
registry stays light enough for the config and the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from ..settings import Section
from . import Method, SweepParam, register


class AdapterSettings(Section):
    reduction_factor: int = Field(16, gt=0, description="hidden size / bottleneck size")
    nonlinearity: Literal["relu", "gelu", "silu"] = "relu"


def _apply(model, cfg, dropout):
    from ._bottleneck import BottleneckConfig, add_adapters

    return add_adapters(
        model,
        BottleneckConfig(
            reduction_factor=cfg.adapter.reduction_factor,
            nonlinearity=cfg.adapter.nonlinearity,
            attention_dropout=dropout.attention_modules,
            mlp_dropout=dropout.mlp_modules,
        ),
    )


def _save(model, folder: Path) -> Path:
    from ._bottleneck import save_adapters

    return save_adapters(model, folder)


def _load(base, folder: Path):
    from ._bottleneck import load_adapters

    return load_adapters(base, folder)


def _recognizes(folder: Path) -> bool:
    from ._bottleneck import is_adapter_dir

    return is_adapter_dir(folder)


register(
    Method(
        name="adapter",
        summary="bottleneck adapters after each attention block and MLP (Houlsby)",
        apply=_apply,
        section="adapter",
        settings=AdapterSettings,
        save=_save,
        load=_load,
        recognizes=_recognizes,
        unmergeable="bottleneck adapters are nonlinear modules, not weight deltas",
        claims={"modified": (3, 5), "savings": (40, 60)},
        sweep={
            "reduction_factor": SweepParam(
                "method.adapter.reduction_factor", (4, 64), description="method.adapter.reduction_factor (log scale)"
            )
        },
    )
)
