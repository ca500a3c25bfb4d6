"""The Shapes world's vocabulary (`shapes_world.json`, fixed: external tools score against it)."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes_world.json")


@dataclass(frozen=True)
class WorldSpec:
    shapes: tuple[str, ...]
    plurals: dict
    colors: dict  # name -> (r, g, b)
    backgrounds: dict
    default_background: str
    forbidden_on_background: dict
    counts: dict  # word -> n
    relations: tuple[str, ...]
    object_size_fraction: tuple[float, float]
    min_gap_fraction: float
    max_objects: int
    held_out: frozenset  # {(color, shape)}
    generation_templates: dict
    edit_types: dict
    sides: tuple[str, ...]

    def allowed(self, color: str, shape: str, background: str, allow_held_out: bool = False) -> bool:
        if color in self.forbidden_on_background.get(background, ()):
            return False
        return allow_held_out or (color, shape) not in self.held_out


@functools.lru_cache(maxsize=1)
def load_spec() -> WorldSpec:
    with open(SPEC_PATH) as f:
        raw = json.load(f)
    return WorldSpec(
        shapes=tuple(raw["shapes"]),
        plurals={k: v["plural"] for k, v in raw["shapes"].items()},
        colors={k: tuple(v) for k, v in raw["colors"].items()},
        backgrounds={k: tuple(v) for k, v in raw["backgrounds"].items()},
        default_background=raw["default_background"],
        forbidden_on_background={k: tuple(v) for k, v in raw["forbidden_on_background"].items()},
        counts=dict(raw["counts"]),
        relations=tuple(raw["relations"]),
        object_size_fraction=tuple(raw["object_size_fraction"]),
        min_gap_fraction=raw["min_gap_fraction"],
        max_objects=raw["max_objects"],
        held_out=frozenset(tuple(p) for p in raw["held_out_color_shape_pairs"]),
        generation_templates=dict(raw["generation_templates"]),
        edit_types=dict(raw["edit_types"]),
        sides=tuple(raw["sides"]),
    )


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"
