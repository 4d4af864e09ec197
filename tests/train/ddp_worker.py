"""Run by torchrun in tests: trains with deftune's engine and records, per rank, which examples this rank was
given and the final trainable weights."""

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from deftune import config, methods
from deftune.train import engine, recipe

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
seen: list[str] = []
collate = engine.Collator.__call__


def recording_collate(self, examples):
    seen.extend(e.id for e in examples)
    return collate(self, examples)


def save_rank_weights(model, cfg, train_dir):
    weights = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(weights, str(out / f"weights-{rank}.safetensors"))
    return out / f"tokenizer-{rank}"


engine.Collator.__call__ = recording_collate
methods.save = save_rank_weights
recipe.train(config.load(None, sys.argv[2:]), quiet=True)
(out / f"seen-{rank}.json").write_text(json.dumps(seen))
