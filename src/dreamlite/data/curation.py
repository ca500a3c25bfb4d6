"""The curated Shapes subset for supervised fine-tuning: hard prompt categories and balanced edit types.

Pretraining draws captions of random scenes and edit types at the world's natural rates; SFT instead
draws from a chosen set of prompt categories (GenEval's tags, dense multi-object prompts, or plain
captions), each as often as the others, and from a chosen set of edit types, each as often as the
others. Sample `i` is still a pure function of (seed, i), so the stream shards and resumes exactly like
`ShapesStream`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DreamLiteError
from ..world.captions import CATEGORIES, generation_example
from ..world.edits import EDIT_TYPES, sample_edit
from ..world.render import render
from .shapes import ShapesStream
from .transforms import to_tensor

_SALT = 5  # keeps curated samples distinct from the pretraining stream's samples of the same seed


def check_selection(categories, edit_types, edit_fraction: float):
    """One-line errors for a selection that names nothing or something unknown."""
    if not 0.0 <= edit_fraction <= 1.0:
        raise DreamLiteError(f"curation.edit_fraction must be in [0, 1], got {edit_fraction}")
    for name, given, known, needed in (("curation.categories", categories, CATEGORIES, edit_fraction < 1),
                                       ("curation.edit_types", edit_types, EDIT_TYPES, edit_fraction > 0)):
        if not isinstance(given, (list, tuple)) or (needed and not given):
            raise DreamLiteError(f"{name} must be a non-empty list (from {', '.join(known)})")
        unknown = [g for g in given if g not in known]
        if unknown:
            raise DreamLiteError(f"{name}: unknown {unknown[0]!r}; expected some of {', '.join(known)}")


def curated_sample(seed: int, index: int, size: int, categories, edit_types, edit_fraction: float = 0.5) -> dict:
    """One curated sample in the common format (uint8 arrays), a pure function of (seed, index)."""
    rng = np.random.default_rng([seed, index, _SALT])
    key = f"sft-{seed}-{index:09d}"
    if rng.random() >= edit_fraction:
        category = categories[int(rng.integers(len(categories)))]
        prompt, scene = generation_example(rng, category, size)
        return {"image": render(scene), "text": prompt, "task": "generate", "key": key, "category": category,
                "scene": scene.to_dict()}
    edit_type = edit_types[int(rng.integers(len(edit_types)))]
    case = None
    while case is None:  # this source cannot take the edit: draw another source from the same rng
        case = sample_edit(rng, size, edit_type)
    return {"image": render(case.target), "source": render(case.source), "text": case.instruction, "task": "edit",
            "key": key, "edit_type": edit_type, "category": f"edit:{edit_type}", "scene": case.target.to_dict()}


class CuratedShapesStream(ShapesStream):
    """Infinite (or `length`-limited) stream of curated samples as training tensors; shards like ShapesStream."""

    def __init__(self, size: int = 128, seed: int = 0, categories=tuple(CATEGORIES), edit_types=EDIT_TYPES,
                 edit_fraction: float = 0.5, start: int = 0, length: int | None = None):
        check_selection(categories, edit_types, edit_fraction)
        super().__init__("joint", size, seed, edit_fraction, start, length)
        self.categories, self.edit_types = list(categories), list(edit_types)

    def __iter__(self):
        for index in self.indices():
            sample = curated_sample(self.seed, index, self.size, self.categories, self.edit_types, self.edit_fraction)
            out = {"image": to_tensor(sample["image"]), "text": sample["text"], "task": sample["task"],
                   "key": sample["key"], "index": index, "category": sample["category"]}
            if "source" in sample:
                out["source"] = to_tensor(sample["source"])
            yield out


def category_counts(stream: torch.utils.data.IterableDataset, n: int) -> dict:
    """How often each category occurs in the first `n` samples (to check a selection's balance)."""
    counts: dict = {}
    for i, sample in enumerate(stream):
        if i >= n:
            break
        counts[sample["category"]] = counts.get(sample["category"], 0) + 1
    return counts
