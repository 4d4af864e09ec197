import pytest

from deftune.config import AuditConfig
from deftune.data.audit import audit
from deftune.data.render import Renderer

from .crafted import dataset


@pytest.fixture(scope="session")
def renderer(tokenizer):
    return Renderer(tokenizer, labels=["sport", "tech"], max_input_tokens=128, max_length=256)


@pytest.fixture
def run_audit(tokenizer, renderer):
    """Audit crafted records (cleanlab off unless asked) and return the result."""

    def run(records, eval_records=None, *, renderer=renderer, out_dir=None, **settings):
        cfg = AuditConfig(**{"cleanlab": False, **settings})
        return audit(
            dataset(records),
            eval=dataset(eval_records) if eval_records else None,
            tokenizer=tokenizer,
            renderer=renderer,
            cfg=cfg,
            out_dir=out_dir,
        )

    return run
