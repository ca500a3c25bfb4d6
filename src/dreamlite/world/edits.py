"""The nine edit operations: functions from a source scene to a target scene, with their instruction.

Every training triplet and evaluation case therefore has an exact ground-truth target. An instruction
names an object by colour and shape, and the source holds exactly one object matching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .scene import Scene, place_object, random_kind, sample_scene
from .spec import load_spec, with_article

EDIT_TYPES = ("add", "remove", "replace", "adjust", "background", "action", "style", "extract", "compose")
SIMPLE_TYPES = EDIT_TYPES[:-1]


@dataclass(frozen=True)
class EditCase:
    source: Scene
    target: Scene
    instruction: str
    edit_type: str
    changed: tuple = field(default_factory=tuple)  # boxes (x0, y0, x1, y1) of changed objects, source and target
    moved: tuple = field(default_factory=tuple)  # (index in target, side) for action edits
    added: tuple = field(default_factory=tuple)  # indices in target of added objects

    def to_dict(self) -> dict:
        return {"source": self.source.to_dict(), "target": self.target.to_dict(), "instruction": self.instruction,
                "edit_type": self.edit_type, "changed": [list(b) for b in self.changed],
                "moved": [list(m) for m in self.moved], "added": list(self.added)}

    @classmethod
    def from_dict(cls, d: dict) -> EditCase:
        return cls(Scene.from_dict(d["source"]), Scene.from_dict(d["target"]), d["instruction"], d["edit_type"],
                   tuple(tuple(b) for b in d.get("changed", [])), tuple(tuple(m) for m in d.get("moved", [])),
                   tuple(d.get("added", [])))


def _t(name, **kw):
    return load_spec().edit_types[name].format(**kw)


def _nameable(scene: Scene) -> list[int]:
    return [i for i, o in enumerate(scene.objects) if len(scene.find(o.color, o.shape)) == 1]


def _pick_named(rng, scene):
    options = _nameable(scene)
    return None if not options else options[int(rng.integers(len(options)))]


def edit_add(rng, src: Scene, allow_held_out=False):
    if len(src.objects) >= load_spec().max_objects:
        return None
    color, shape = random_kind(rng, src.background, allow_held_out)
    obj = place_object(rng, src, shape, color)
    if obj is None:
        return None
    tgt = src.with_objects(src.objects + (obj,))
    return EditCase(src, tgt, _t("add", color=color, shape=shape), "add", (obj.box,), added=(len(tgt.objects) - 1,))


def edit_remove(rng, src, allow_held_out=False):
    i = _pick_named(rng, src)
    if i is None or len(src.objects) < 2:
        return None
    o = src.objects[i]
    tgt = src.with_objects(src.objects[:i] + src.objects[i + 1:])
    return EditCase(src, tgt, _t("remove", color=o.color, shape=o.shape), "remove", (o.box,))


def _recolor_or_reshape(rng, src, kind, allow_held_out):
    i = _pick_named(rng, src)
    if i is None:
        return None
    o = src.objects[i]
    for _ in range(20):
        color, shape = random_kind(rng, src.background, allow_held_out)
        if kind == "adjust":
            shape = o.shape
            if not load_spec().allowed(color, shape, src.background, allow_held_out):
                continue
        if (color, shape) == (o.color, o.shape) or (kind == "replace" and shape == o.shape) or src.find(color, shape):
            continue
        new = replace(o, color=color, shape=shape)
        tgt = src.with_objects(src.objects[:i] + (new,) + src.objects[i + 1:])
        if kind == "adjust":
            text = _t("adjust", color=o.color, shape=o.shape, color2=color)
        else:
            text = _t("replace", color=o.color, shape=o.shape, color2=color, shape2=shape)
            text = text.replace(f"with a {color}", f"with {with_article(color)}")
        return EditCase(src, tgt, text, kind, (o.box,))
    return None


def edit_replace(rng, src, allow_held_out=False):
    return _recolor_or_reshape(rng, src, "replace", allow_held_out)


def edit_adjust(rng, src, allow_held_out=False):
    return _recolor_or_reshape(rng, src, "adjust", allow_held_out)


def edit_background(rng, src, allow_held_out=False):
    spec = load_spec()
    options = [b for b in spec.backgrounds if b != src.background
               and all(o.color not in spec.forbidden_on_background.get(b, ()) for o in src.objects)]
    if not options:
        return None
    bg = options[int(rng.integers(len(options)))]
    return EditCase(src, replace(src, background=bg), _t("background", background=bg), "background")


def side_region(side: str, size: int, margin: float = 0.0):
    """Centre region (x0, y0, x1, y1) of the named half, `margin` inside its border."""
    half = size / 2
    return {"left": (0, 0, half - margin, size), "right": (half + margin, 0, size, size),
            "top": (0, 0, size, half - margin), "bottom": (0, half + margin, size, size)}[side]


def in_side(cx: float, cy: float, side: str, size: int) -> bool:
    half = size / 2
    return {"left": cx < half, "right": cx > half, "top": cy < half, "bottom": cy > half}[side]


def edit_action(rng, src, allow_held_out=False):
    i = _pick_named(rng, src)
    if i is None:
        return None
    o = src.objects[i]
    sides = [s for s in load_spec().sides if not in_side(o.cx, o.cy, s, src.size)]
    if not sides:
        return None
    side = sides[int(rng.integers(len(sides)))]
    rest = src.with_objects(src.objects[:i] + src.objects[i + 1:])
    moved = place_object(rng, rest, o.shape, o.color, size=o.size, region=side_region(side, src.size, 0.05 * src.size))
    if moved is None:
        return None
    tgt = src.with_objects(src.objects[:i] + (moved,) + src.objects[i + 1:])
    return EditCase(src, tgt, _t("action", color=o.color, shape=o.shape, side=side), "action", (o.box, moved.box),
                    moved=((i, side),))


def edit_style(rng, src, allow_held_out=False):
    return EditCase(src, replace(src, grayscale=True), _t("style"), "style")


def edit_extract(rng, src, allow_held_out=False):
    i = _pick_named(rng, src)
    if i is None or len(src.objects) < 2:
        return None
    o = src.objects[i]
    if o.color == "white":  # would vanish on the white canvas
        return None
    c = src.size / 2
    tgt = Scene(src.size, "white", (replace(o, cx=c, cy=c),))
    return EditCase(src, tgt, _t("extract", color=o.color, shape=o.shape), "extract", (o.box, tgt.objects[0].box))


OPS = {"add": edit_add, "remove": edit_remove, "replace": edit_replace, "adjust": edit_adjust,
       "background": edit_background, "action": edit_action, "style": edit_style, "extract": edit_extract}
COMPOSABLE = ("add", "remove", "replace", "adjust", "background", "action")  # object-level edits compose cleanly


def edit_compose(rng, src, allow_held_out=False):
    names = list(COMPOSABLE)
    a, b = (names[k] for k in rng.choice(len(names), 2, replace=False))
    first = OPS[a](rng, src, allow_held_out)
    if first is None:
        return None
    second = OPS[b](rng, first.target, allow_held_out)
    if second is None or not _independent(first, second):
        return None
    added = tuple(first.added) + tuple(second.added)
    return EditCase(src, second.target, _t("compose", edit_1=first.instruction, edit_2=second.instruction), "compose",
                    first.changed + second.changed, first.moved + second.moved, added)


def _independent(first: EditCase, second: EditCase) -> bool:
    """The second step must not touch what the first changed ("add a star and remove the star" is no edit)."""
    return not any(_overlap(a, b) for a in first.changed for b in second.changed)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


OPS["compose"] = edit_compose


def apply_edit(rng, src: Scene, edit_type: str, allow_held_out: bool = False) -> EditCase | None:
    return OPS[edit_type](rng, src, allow_held_out)


def sample_edit(rng, size: int, edit_type: str | None = None, allow_held_out: bool = False) -> EditCase | None:
    """A random source scene and an edit of it (None when this source cannot take the edit)."""
    edit_type = edit_type or EDIT_TYPES[int(rng.integers(len(EDIT_TYPES)))]
    n = int(rng.integers(1, load_spec().max_objects + 1))
    if edit_type in ("remove", "extract"):
        n = max(n, 2)
    if edit_type == "add":
        n = min(n, load_spec().max_objects - 1)
    src = sample_scene(rng, size, n_objects=n, allow_held_out=allow_held_out)
    return apply_edit(rng, src, edit_type, allow_held_out)
