"""The Shapes world as an infinite, seeded, sharded PyTorch stream for each training task mix.

Sample `i` is a pure function of (seed, i): rank r of R with W dataloader workers each reads indices
`start + shard, start + shard + R*W, ...`, so no two processes see the same sample and a resumed run can
continue from any index. Held-out colour-shape pairs never appear.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ..errors import DreamLiteError
from ..world.captions import CATEGORIES, generation_example
from ..world.edits import sample_edit
from ..world.render import render, shape_coverage
from ..world.scene import Scene
from .sharding import shard_info
from .transforms import to_tensor

TASKS = ("t2i", "edit", "joint")


def draw_sample(seed: int, index: int, task: str, size: int, edit_fraction: float = 0.5) -> dict:
    """What sample `index` is, without rendering it: `task` ("generate" / "edit"), `text`, `key` and its
    `scene` (generation, with its `category`) or edit `case`. Cheap, for anything that needs only the prompts."""
    rng = np.random.default_rng([seed, index])
    if task == "joint":
        task = "edit" if rng.random() < edit_fraction else "t2i"
    key = f"{seed}-{index:09d}"
    if task == "t2i":  # every prompt family of the world equally often (GenEval tags, dense, free captions)
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        text, scene = generation_example(rng, category, size)
        return {"task": "generate", "text": text, "key": key, "category": category, "scene": scene}
    case = sample_edit(rng, size)
    while case is None:  # an edit type that this source scene cannot take; draw again from the same rng
        case = sample_edit(rng, size)
    return {"task": "edit", "text": case.instruction, "key": key, "case": case}


def shapes_sample(seed: int, index: int, task: str, size: int, edit_fraction: float = 0.5) -> dict:
    """One sample in the common format, as uint8 arrays (`image`, `source`) plus text and metadata."""
    drawn = draw_sample(seed, index, task, size, edit_fraction)
    if drawn["task"] == "generate":
        return {"image": render(drawn["scene"]), "text": drawn["text"], "task": "generate", "key": drawn["key"],
                "category": drawn["category"], "scene": drawn["scene"].to_dict()}
    case = drawn["case"]
    return {"image": render(case.target), "source": render(case.source), "text": drawn["text"], "task": "edit",
            "key": drawn["key"], "edit_type": case.edit_type, "scene": case.target.to_dict()}


class ShapesStream(torch.utils.data.IterableDataset):
    """Infinite (or `length`-limited) stream of Shapes samples as training tensors."""

    def __init__(self, task: str = "t2i", size: int = 128, seed: int = 0, edit_fraction: float = 0.5,
                 start: int = 0, length: int | None = None, with_shapes: bool = False):
        if task not in TASKS:
            raise DreamLiteError(f"unknown task mix {task!r}; expected one of {TASKS}")
        if not 0.0 <= edit_fraction <= 1.0:
            raise DreamLiteError(f"edit_fraction must be in [0, 1], got {edit_fraction}")
        self.task, self.size, self.seed, self.edit_fraction = task, size, seed, edit_fraction
        self.start, self.length = start, length
        self.with_shapes = with_shapes  # also yield `shape_coverage` of the target (shape-tied VAE objective)

    def indices(self):
        shard, num_shards = shard_info()
        stop = None if self.length is None else self.start + self.length
        counter = itertools.count(self.start + shard, num_shards)
        return counter if stop is None else itertools.takewhile(lambda i: i < stop, counter)

    def __iter__(self):
        for index in self.indices():
            sample = shapes_sample(self.seed, index, self.task, self.size, self.edit_fraction)
            out = {"image": to_tensor(sample["image"]), "text": sample["text"], "task": sample["task"],
                   "key": sample["key"], "index": index}
            if "source" in sample:
                out["source"] = to_tensor(sample["source"])
            if self.with_shapes:
                out["shape_coverage"] = torch.from_numpy(shape_coverage(Scene.from_dict(sample["scene"])))
            yield out
