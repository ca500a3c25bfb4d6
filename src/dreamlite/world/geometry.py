"""GenEval's relative-position rule on box centres (shared by captions, scoring and edits)."""

from __future__ import annotations

import numpy as np

POSITION_THRESHOLD = 0.1


def relations_between(a, b) -> set[str]:
    """Relations of object `a` to object `b` (objects with cx, cy, size; image y grows downwards).

    The centre offset is shrunk by 0.1 of the summed box sizes; the dominant normalised component beyond
    0.5 decides, exactly as GenEval's `relative_position`.
    """
    offset = np.array([a.cx - b.cx, a.cy - b.cy], dtype=np.float64)
    dims = np.array([a.size + b.size, a.size + b.size], dtype=np.float64)
    if hasattr(a, "width"):
        dims = np.array([a.width + b.width, a.height + b.height], dtype=np.float64)
    revised = np.maximum(np.abs(offset) - POSITION_THRESHOLD * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels
