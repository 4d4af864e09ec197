"""What the checks are given: text views of the datasets, the renderer, the thresholds and the seed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ...config import AuditConfig
from ..render import Renderer
from .masking import Rendering, render_pass
from .texts import Texts


@dataclass
class Context:
    train: Texts
    eval: Texts | None
    tokenizer: object
    renderer: Renderer
    cfg: AuditConfig
    seed: int

    @cached_property
    def rendering(self) -> Rendering:
        """Every training record rendered once, shared by the masking and shape checks."""
        return render_pass(self.train.records, self.renderer)
