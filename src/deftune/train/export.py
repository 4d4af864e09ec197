"""`deftune export`: a run's result in Hugging Face formats — the adapter folder as is, or one merged model
loadable with `AutoModelForCausalLM.from_pretrained`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .. import methods
from ..core import runs
from ..errors import RunError


def export(run_dir: str | Path, *, merge: bool = False, out: str | Path | None = None) -> Path:
    """Write the run's adapter (or full model) to `out`, or with `merge` the base model with the adapter folded
    in. The target appears only once complete."""
    run_dir = Path(run_dir)
    cfg = runs.load_config(run_dir)
    method = methods.get(cfg.method.name)
    source = run_dir / "train" / method.saved_as
    full = method.saved_as == "model"
    if not source.is_dir():
        raise RunError(f"{run_dir}: the run has no trained result to export (missing {source})")
    if merge and method.unmergeable:
        raise RunError(f"cannot merge a {method.name} run: {method.unmergeable}; export it without --merge")
    target = Path(out) if out else run_dir / "export" / ("merged" if merge and not full else source.name)
    if target.exists():
        raise RunError(f"{target} already exists; remove it or choose --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if merge and not full:
            model, tokenizer, _ = runs.load_trained(run_dir)
            model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        else:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
